"""Live throughput through Fulcrum's TUN service interfaces with one packet
loop, measured in the same run on the same machine (the e2e topology:
namespaces, 198.18.0.0/15 only), for three settings of fulcrum-data:
  before:   --burst 1  --offload off   one packet per turn and per system call
  burst:    --burst 32 --offload off   bursts of up to 32 packets per turn
  offload:  --burst 32 --offload on    GSO super-packets, up to 64 KiB per system call

  sudo FULCRUM_BUILD=build/gcc python3 tests/bench/tun_burst.py

Reports wrk requests/s (keep-alive, small page), the rate of a 40 MB download,
the packets the loop received (rx_packets: fewer per byte with offload) and
ratios against "before". Bounded: 8 s of wrk and one download per setting."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import topology  # noqa: E402

CONFIG = """\
set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
set application shop server s3 address 198.18.1.13 port 8080
"""


SETTINGS = [("before", ["--burst", "1", "--offload", "off"]),
            ("burst", ["--burst", "32", "--offload", "off"]),
            ("offload", ["--burst", "32", "--offload", "on"])]


def measure(args):
    with topology.Topology(loops=1, capacity=100000) as t:
        t.data_args = args
        t.up(CONFIG)
        r = t.ns(t.ns_cli, ["wrk", "-t2", "-c32", "-d8s", "--timeout", "2s",
                            "http://%s/" % topology.FACADE], timeout=60)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
        errors = re.search(r"Socket errors: (.*)", r.stdout)
        start = time.monotonic()
        r = t.ns(t.ns_cli, ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w",
                            "%{speed_download}", "http://%s/big.bin" % topology.FACADE], timeout=90)
        mbps = float(r.stdout) / 1e6
        took = time.monotonic() - start
        counters = t.counters()
        return {"rps": rps, "mbps": mbps, "took": took, "errors": errors.group(1) if errors else "none",
                "rx": counters.get("rx_packets", 0), "tx_errors": counters.get("tx_errors", 0)}


def main():
    results = {label: measure(args) for label, args in SETTINGS}
    base = results["before"]
    print("%-8s %12s %14s %12s %10s %18s" % ("setting", "requests/s", "download MB/s", "rx_packets",
                                             "tx_errors", "ratio rps / MB/s"))
    for label, r in results.items():
        print("%-8s %12.0f %14.1f %12d %10d %10.2f / %.2f   (socket errors: %s)" % (
            label, r["rps"], r["mbps"], r["rx"], r["tx_errors"], r["rps"] / base["rps"],
            r["mbps"] / base["mbps"], r["errors"]))


if __name__ == "__main__":
    main()
