"""Replay harness tests: every committed capture through fulcrum-replay with
every algorithm, with and without persistence, with the HTTP filter off
(replay.conf) and on (replay-http.conf), checked against
tests/captures/expected.json (facts counted from the captures by
summarize.py), plus the harness's error paths.

usage: replay_tests.py FULCRUM_REPLAY CAPTURES_DIR
"""
import itertools
import json
import os
import subprocess
import sys
import tempfile

ALGORITHMS = ["least-connections", "round-robin", "weighted-round-robin", "source-hash", "maglev"]

failures = []
checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def replay(binary, config_text, capture, *extra):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(config_text)
        path = f.name
    try:
        p = subprocess.run([binary, "--config", path, "--capture", capture, *extra],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    return p


# Server values the HTTP filter writes (replay-http.conf) are longer than the
# façade's "198.18.0.10" or "198.18.0.10:80" for s1 and s2, not for s3.
LONGER_HOST = {"s1": True, "s2": True, "s3": False}

# Data-plane counters of the HTTP filter that no committed capture should move.
HTTP_NEVER = ["http_malformed", "http_too_long", "http_tunneled", "http_untracked",
              "drop_http_out_of_order", "drop_http_retransmit_split"]


def check_http(label, r, facts):
    """The HTTP filter's figures against the harness's own model and the facts
    summarize.py measured in the capture."""
    h, c = r["http"], r["counters"]
    check(h["filter"], "%s: http filter not on" % label)
    for key in ("stream_mismatches", "seq_mismatches", "log_mismatches", "unchecked_flows"):
        check(h[key] == 0, "%s: http %s %d" % (label, key, h[key]))
    requests = facts["http_requests"]
    check(h["requests_expected"] == requests,
          "%s: harness found %d requests, summarize.py %d" % (label, h["requests_expected"], requests))
    check(h["requests_logged"] == requests,
          "%s: %d requests logged, capture has %d" % (label, h["requests_logged"], requests))
    check(c.get("http_requests", 0) == requests,
          "%s: http_requests %d, capture has %d" % (label, c.get("http_requests", 0), requests))
    check(h["facade_hosts"] == facts["facade_hosts"],
          "%s: %d Host values name the facade, summarize.py says %d"
          % (label, h["facade_hosts"], facts["facade_hosts"]))
    check(h["hosts_split_expected"] == facts["facade_hosts_split"],
          "%s: %d split Host values, summarize.py says %d"
          % (label, h["hosts_split_expected"], facts["facade_hosts_split"]))
    check(h["hosts_rewritten_expected"] + h["hosts_split_expected"] + h["hosts_too_big_expected"]
          == facts["facade_hosts"], "%s: rewritten + split + too big != facade hosts: %s" % (label, h))
    for counter, figure in (("http_hosts_rewritten", "hosts_rewritten_expected"),
                            ("http_host_split", "hosts_split_expected"),
                            ("http_host_not_rewritten", "hosts_too_big_expected"),
                            ("http_retransmits_rewritten", "retransmits_rewritten_expected"),
                            ("http_not_http", "not_http_flows"),
                            ("http_mss_lowered", "mss_lowered_expected")):
        check(c.get(counter, 0) == h[figure],
              "%s: %s %d, harness expects %d" % (label, counter, c.get(counter, 0), h[figure]))
    check(h["not_http_flows"] == facts["not_http_connections"],
          "%s: %d flows not HTTP, capture has %d" % (label, h["not_http_flows"],
                                                     facts["not_http_connections"]))
    for counter in HTTP_NEVER:
        check(c.get(counter, 0) == 0, "%s: %s %d" % (label, counter, c.get(counter, 0)))
    # Per connection: the same facts, and the server's stream as long as the
    # client's plus what the rewrites added.
    check(len(h["flows"]) == facts["connections"],
          "%s: %d http flows, capture has %d connections" % (label, len(h["flows"]),
                                                             facts["connections"]))
    by_client = {c["client"]: c for c in facts["per_connection"]}
    for f in h["flows"]:
        who = "%s: %s on %s" % (label, f["client"], f["server"])
        conn = by_client.get(f["client"], {})
        check(f["checked"], "%s: streams not compared" % who)
        check(f["requests"] == f["logged"] == conn.get("http_requests"),
              "%s: %d requests, %d logged, capture has %s"
              % (who, f["requests"], f["logged"], conn.get("http_requests")))
        check(f["facade_hosts"] == conn.get("facade_hosts") and
              f["split"] == conn.get("facade_hosts_split"),
              "%s: facade hosts %d (split %d), capture %s" % (who, f["facade_hosts"], f["split"], conn))
        check(f["server_bytes"] == f["client_bytes"] + f["length_change"],
              "%s: server stream %d bytes, client %d, change %d"
              % (who, f["server_bytes"], f["client_bytes"], f["length_change"]))
        if f["rewrites"] == 0:
            check(f["length_change"] == 0, "%s: length change without rewrites" % who)
        elif LONGER_HOST[f["server"]]:
            check(f["length_change"] > 0, "%s: rewrites to a longer value, change %d"
                  % (who, f["length_change"]))
        else:
            check(f["length_change"] <= 0, "%s: rewrites to a shorter value, change %d"
                  % (who, f["length_change"]))


def check_filter_capture(label, r, facts):
    """What http-filter-eth.pcap was made to show (tests/captures/README.md)."""
    h, c = r["http"], r["counters"]
    check(facts["client_retransmissions"] >= 1 and h["retransmits_rewritten_expected"] >= 1,
          "%s: no retransmission of a rewritten request (%d in the capture)"
          % (label, facts["client_retransmissions"]))
    check(c.get("http_host_split", 0) == facts["facade_hosts_split"] >= 2,
          "%s: http_host_split %d" % (label, c.get("http_host_split", 0)))
    check(c.get("http_not_http", 0) == facts["not_http_connections"] == 1,
          "%s: http_not_http %d" % (label, c.get("http_not_http", 0)))
    for f in h["flows"]:
        if f["split"] or f["not_http"]:
            # left as sent: only NAT touched it
            check(f["rewrites"] == 0 and f["server_bytes"] == f["client_bytes"],
                  "%s: %s changed: %s" % (label, f["client"], f))
    check(sum(f["requests"] for f in h["flows"] if f["requests"] >= 4) >= 4,
          "%s: no pipelined connection" % label)


def main():
    binary, captures = sys.argv[1], sys.argv[2]
    base = open(os.path.join(captures, "replay.conf")).read()
    http_base = open(os.path.join(captures, "replay-http.conf")).read()
    expected = json.load(open(os.path.join(captures, "expected.json")))
    check(len(expected) >= 3, "expected.json lists the captures")

    for name, facts in sorted(expected.items()):
        if "error" in facts:
            continue  # the damaged files: checked below
        capture = os.path.join(captures, name)
        for algorithm, persistence, http in itertools.product(ALGORITHMS, (False, True),
                                                              (False, True)):
            config = http_base if http else base
            config += "set application shop algorithm %s\n" % algorithm
            config += "set application shop server s1 weight 3\n"
            if persistence:
                config += "set application shop persistence source-address timeout 1800\n"
            label = "%s %s%s%s" % (name, algorithm, " +persistence" if persistence else "",
                                   " +http-filter" if http else "")
            p = replay(binary, config, capture, "--json")
            check(p.returncode == 0, "%s: exit %d: %s" % (label, p.returncode, p.stdout + p.stderr))
            if p.returncode not in (0, 1):
                continue
            r = json.loads(p.stdout)
            check(r["mismatches"] == 0, "%s: mismatches %d" % (label, r["mismatches"]))
            check(r["checksum_errors"] == 0, "%s: checksum errors %d" % (label, r["checksum_errors"]))
            check(r["dropped"] == 0, "%s: dropped %d" % (label, r["dropped"]))
            check(r["packets"] == facts["packets"],
                  "%s: packets %d, capture has %d" % (label, r["packets"], facts["packets"]))
            check(r["flows"] == facts["connections"],
                  "%s: flows %d, capture has %d" % (label, r["flows"], facts["connections"]))
            closed = facts["fin_closed"] + facts["rst_closed"]
            check(r["closed_flows"] == closed,
                  "%s: closed flows %d, capture has %d" % (label, r["closed_flows"], closed))
            check(r["open_sessions"] == r["flows"] - closed,
                  "%s: %d sessions left for %d open connections"
                  % (label, r["open_sessions"], r["flows"] - closed))
            check(r["replies_without_session"] == 0,
                  "%s: %d replies without a session" % (label, r["replies_without_session"]))
            spread = r["sessions_by_server"]
            check(sum(spread.values()) == r["flows"],
                  "%s: sessions by server %s do not add up to %d flows" % (label, spread, r["flows"]))
            sticky = persistence or algorithm == "source-hash"
            if sticky:
                for client, servers in r["servers_by_client"].items():
                    check(len(servers) == 1, "%s: client %s on %s" % (label, client, servers))
            elif algorithm == "round-robin":
                check(max(spread.values()) - min(spread.values()) <= 1,
                      "%s: round-robin spread %s" % (label, spread))
            elif algorithm == "weighted-round-robin" and r["flows"] >= 10:
                check(spread["s1"] > spread["s2"] and spread["s1"] > spread["s3"],
                      "%s: weight 3 server not preferred: %s" % (label, spread))
            if not http:
                check(not r["http"]["filter"] and r["http"]["requests_logged"] == 0,
                      "%s: http figures with the filter off: %s" % (label, r["http"]))
                continue
            check_http(label, r, facts)
            h = r["http"]
            if algorithm in ("round-robin", "least-connections") and not persistence:
                # every server gets connections: some change length, some not
                check(h["length_changed_flows"] > 0 and h["same_length_flows"] > 0,
                      "%s: length changed on %d flows, kept on %d" % (
                          label, h["length_changed_flows"], h["same_length_flows"]))
            if name == "http-filter-eth.pcap":
                check_filter_capture(label, r, facts)

    # The http-filter capture with one server at a time: every connection's
    # Host grows (s1: SACK edges and acknowledgements mapped, every SYN+ACK's
    # MSS lowered), or none does (s3).
    name = "http-filter-eth.pcap"
    capture, facts = os.path.join(captures, name), expected.get(name)
    check(facts is not None, "expected.json describes %s" % name)
    for only in ("s1", "s3") if facts else ():
        config = "".join(line + "\n" for line in http_base.splitlines()
                         if " server " not in line or " server %s " % only in line)
        label = "%s only %s" % (name, only)
        p = replay(binary, config, capture, "--json")
        check(p.returncode == 0, "%s: exit %d: %s" % (label, p.returncode, p.stdout + p.stderr))
        if p.returncode != 0:
            continue
        r = json.loads(p.stdout)
        check(r["mismatches"] == 0 and r["checksum_errors"] == 0 and r["dropped"] == 0,
              "%s: %s" % (label, r))
        check(r["sessions_by_server"] == {only: facts["connections"]},
              "%s: sessions %s" % (label, r["sessions_by_server"]))
        check_http(label, r, facts)
        check_filter_capture(label, r, facts)
        h = r["http"]
        rewriting = sum(1 for f in h["flows"] if f["rewrites"] > 0)
        if only == "s1":
            check(h["length_changed_flows"] == rewriting and h["same_length_flows"] == 0,
                  "%s: %s" % (label, h))
            check(h["mss_lowered_expected"] == facts["connections"],
                  "%s: MSS lowered on %d SYN+ACKs" % (label, h["mss_lowered_expected"]))
            check(h["acks_mapped"] > 0 and h["sack_edges_mapped"] >= 2,
                  "%s: %d acks, %d SACK edges mapped" % (label, h["acks_mapped"],
                                                         h["sack_edges_mapped"]))
        else:
            check(h["mss_lowered_expected"] == 0, "%s: MSS lowered for s3" % label)
    # The checks themselves: a data plane that cannot grow packets is caught.
    p = replay(binary, http_base, capture, "--json", "--no-room")
    if p.returncode in (0, 1):
        r = json.loads(p.stdout)
        check(p.returncode == 1 and r["http"]["stream_mismatches"] > 0 and
              r["http"]["seq_mismatches"] > 0 and
              r["counters"].get("http_host_not_rewritten", 0) > 0,
              "--no-room: rewrites that need room not caught: %s" % r["http"])
    else:
        check(False, "--no-room: exit %d: %s" % (p.returncode, p.stderr))

    # The cluster-side output is a capture the harness can read back.
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cluster.pcap")
        p = replay(binary, base, os.path.join(captures, "http-mixed-eth.pcap"),
                   "--out-cluster", out, "--out-client", os.path.join(d, "client.pcap"))
        check(p.returncode == 0 and os.path.getsize(out) > 24, "--out-cluster writes a capture")
        check("sessions by server" in p.stdout, "text summary printed")
        p = replay(binary, http_base, os.path.join(captures, "http-mixed-eth.pcap"),
                   "--out-cluster", out)
        check(p.returncode == 0 and "http filter" in p.stdout, "text summary of the http filter")
        p = replay(binary, base, out, "--json")
        check(p.returncode in (0, 1) and json.loads(p.stdout)["packets"] > 0,
              "the cluster-side output of the http filter reads back")

    # Error paths: one line on stderr, exit status 2.
    bad = [
        ("missing capture", base, os.path.join(captures, "no-such-file.pcap")),
        ("not a capture", base, os.path.join(captures, "not-a-capture.pcap")),
        ("truncated capture", base, os.path.join(captures, "truncated.pcap")),
        ("bad configuration", base + "set application shop algorithm fastest\n",
         os.path.join(captures, "http-mixed-eth.pcap")),
    ]
    for label, config, capture in bad:
        p = replay(binary, config, capture, "--json")
        check(p.returncode == 2, "%s: exit %d (want 2)" % (label, p.returncode))
        lines = p.stderr.strip().splitlines()
        check(len(lines) == 1 and lines[0].startswith("fulcrum-replay: "),
              "%s: stderr %r" % (label, p.stderr))
    p = replay(binary, base, os.path.join(captures, "http-mixed-eth.pcap"), "--service-set", "nope")
    check(p.returncode == 2 and "unknown service set 'nope'" in p.stderr, "unknown service set")
    p = subprocess.run([binary, "--config"], capture_output=True, text=True)
    check(p.returncode == 2, "missing argument value")

    print("%d passed, %d failed" % (checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
