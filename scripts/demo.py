"""The demo behind scripts/demo: a client, Fulcrum and three web servers in
network namespaces (tests/e2e/topology.py builds them; 198.18.0.0/15 only),
20 requests through the façade, and what the operator sees."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import topology  # noqa: E402

CONFIG = """\
set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm least-connections
set application shop monitor type http path /health expect 200 interval 1 timeout 1 rise 1 fall 2
set application shop http-filter on
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
set application shop server s3 address 198.18.1.13 port 8080
"""


def section(title):
    print("\n=== " + title)


def main():
    with topology.Topology(loops=2, capacity=100000) as t:
        section("building the topology: client 198.18.0.1 -> façade 198.18.0.10:80 -> servers 198.18.1.11-13:8080")
        t.up(CONFIG)
        print("configuration (fulcrum show configuration):")
        print(t.cli("show", "configuration").stdout.rstrip())
        topology.wait_for("the monitor to see every server up",
                          lambda: all(s["state"] == "up" for s in t.servers().values()), timeout=15)

        section("20 requests with curl from the client")
        counts = {}
        for i in range(20):
            who = t.served_by("/")
            counts[who] = counts.get(who, 0) + 1
            print("request %2d: answered by %s" % (i + 1, who or "nobody (failed)"))
        print("spread: " + ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items(), key=str)))

        section("what the servers saw: the HTTP filter rewrote Host 198.18.0.10 to each server's address")
        for name in ("s1", "s2", "s3"):
            seen = [line for line in t.access_log(name) if "/health" not in line["request"]]
            hosts = sorted({line["http_host"] for line in seen})
            print("%s: %d requests, Host %s" % (name, len(seen), ", ".join(hosts) or "-"))

        section("fulcrum show servers")
        print(t.cli("show", "servers").stdout.rstrip())
        section("fulcrum show sessions (closed connections stay 10 s in time-wait)")
        print(t.cli("show", "sessions").stdout.rstrip())
        section("fulcrum show engines")
        print(t.cli("show", "engines").stdout.rstrip())
        section("the control plane's syslog file: one line per request (the last 5), and events")
        # Request logs are shipped in batches; wait until all 20 have arrived.
        def requests():
            return [l for l in t.syslog().splitlines() if " request [fulcrum@" in l]
        topology.wait_for("20 request lines in the syslog file", lambda: len(requests()) >= 20,
                          timeout=10)
        for line in requests()[-5:]:
            print(line)
        events = [l for l in t.syslog().splitlines() if " request [fulcrum@" not in l]
        for line in events[-5:]:
            print(line)
        section("cleaning up: every namespace and process goes")
    return 0 if counts.get(None, 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
