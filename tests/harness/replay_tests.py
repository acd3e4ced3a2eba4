"""Replay harness tests: every committed capture through fulcrum-replay with
every algorithm, checked against tests/captures/expected.json (facts counted
from the captures by summarize.py), plus the harness's error paths.

usage: replay_tests.py FULCRUM_REPLAY CAPTURES_DIR
"""
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


def main():
    binary, captures = sys.argv[1], sys.argv[2]
    base = open(os.path.join(captures, "replay.conf")).read()
    expected = json.load(open(os.path.join(captures, "expected.json")))
    check(len(expected) >= 3, "expected.json lists the captures")

    for name, facts in sorted(expected.items()):
        if "error" in facts:
            continue  # the damaged files: checked below
        capture = os.path.join(captures, name)
        for algorithm in ALGORITHMS:
            for persistence in (False, True):
                config = base + "set application shop algorithm %s\n" % algorithm
                config += "set application shop server s1 weight 3\n"
                if persistence:
                    config += "set application shop persistence source-address timeout 1800\n"
                label = "%s %s%s" % (name, algorithm, " +persistence" if persistence else "")
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

    # The cluster-side output is a capture the harness can read back.
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cluster.pcap")
        p = replay(binary, base, os.path.join(captures, "http-mixed-eth.pcap"),
                   "--out-cluster", out, "--out-client", os.path.join(d, "client.pcap"))
        check(p.returncode == 0 and os.path.getsize(out) > 24, "--out-cluster writes a capture")
        check("sessions by server" in p.stdout, "text summary printed")

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
