#!/usr/bin/env python3
"""Reads dataplane_bench's JSON (Google Benchmark, with repetitions) and prints
issue 7's data-plane target rows from the medians: fast path by table size,
slow path by table size, memory per session, and 1 -> 2 loop scaling.

    python3 tests/bench/dataplane_targets.py RESULTS.json

Exits 1 when the file holds none of the expected benchmarks (a wrong
filter or a crashed run), never because a target is missed: missing a
target is a figure to report, not a broken run.
"""
import json
import sys


def medians(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        # With repetitions, aggregates carry the run name and an aggregate
        # name; without, each row is a single run and stands for its median.
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            rows[b["run_name"]] = {"error": b.get("error_message", "error")}
            continue
        rows[b.get("run_name", b["name"])] = b
    return data.get("context", {}), rows


def rate(row, scale=1e6):
    if row is None or "error" in row:
        return None
    return row["items_per_second"] / scale


def fmt(value, unit, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def verdict(value, target, higher=True):
    if value is None:
        return "no figure"
    ok = value >= target if higher else value <= target
    return "met" if ok else "MISSED"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    context, rows = medians(sys.argv[1])
    if not any(k.startswith(("BM_FastPath", "BM_SlowPath")) for k in rows):
        print("dataplane_targets: no BM_FastPath or BM_SlowPath rows in " + sys.argv[1],
              file=sys.stderr)
        return 1
    print(f"machine: {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, "
          f"{context.get('host_name', '?')}; medians over the repetitions")
    print()
    print(f"{'figure':58} {'value':>14}  target")
    lines = []
    for n in ("10000", "100000", "1000000", "10000000"):
        row = rows.get(f"BM_FastPath/sessions:{n}/burst:32")
        value = rate(row)
        target = ">= 15 Mpps: " + verdict(value, 15) if n == "1000000" else "(curve)"
        lines.append((f"fast path, {int(n):,} sessions, bursts of 32, one core", fmt(value, "Mpps"),
                      target))
    lines.append(("fast path, 1,000,000 sessions, one packet at a time",
                  fmt(rate(rows.get("BM_FastPath/sessions:1000000/burst:1")), "Mpps"),
                  "(what bursts buy)"))
    for n in ("10000", "100000", "1000000", "10000000"):
        value = rate(rows.get(f"BM_SlowPath/capacity:{n}"))
        target = ">= 2 M/s: " + verdict(value, 2) if n == "1000000" else "(curve)"
        lines.append((f"slow path, new sessions/s, {int(n):,}-session table, one core",
                      fmt(value, "M/s", 2), target))
    worst = None
    for key, row in rows.items():
        if key.startswith("BM_FastPath/") and "error" not in row and "bytes_per_session" in row:
            worst = max(worst or 0, row["bytes_per_session"])
    lines.append(("memory per IPv4 session, both directions (largest table)",
                  fmt(worst, "B"), "<= 64 B: " + verdict(worst, 64, higher=False)))
    for sessions, shared, label in (("10000", 1, "10k sessions, shared table"),
                                    ("10000", 0, "10k sessions, a table per loop (ceiling)"),
                                    ("1000000", 1, "1M sessions, shared table"),
                                    ("1000000", 0, "1M sessions, a table per loop (ceiling)")):
        base = f"BM_FastPathLoops/sessions:{sessions}/shared:{shared}/real_time"
        one = rate(rows.get(base + "/threads:1"))
        two = rate(rows.get(base + "/threads:2"))
        ratio = two / one if one and two else None
        target = ">= 1.8x: " + verdict(ratio, 1.8) if shared else "(control)"
        lines.append((f"scaling 1 -> 2 loops, {label}",
                      fmt(ratio, "x", 2) + f" ({fmt(one, '')}-> {fmt(two, 'Mpps')})", target))
    for name, value, target in lines:
        print(f"{name:58} {value:>14}  {target}")
    print("\nthe machine's memory (BM_RandomLoads, huge pages), to read the figures above against:")
    for mib, chains, what in (("8", "1", "one chain of dependent loads over 8 MiB (fits L3)"),
                              ("64", "1", "one chain of dependent loads over 64 MiB (latency)"),
                              ("64", "16", "16 chains at once over 64 MiB (overlapped)"),
                              ("1024", "1", "one chain of dependent loads over 1 GiB")):
        per = rate(rows.get(f"BM_RandomLoads/MiB:{mib}/chains:{chains}"), 1.0)
        print(f"  {what:58} {fmt(1e9 / per if per else None, 'ns/load'):>14}")
    huge = [row.get("huge_page_MiB") for key, row in rows.items()
            if key.startswith("BM_FastPath/sessions:10000000") and "error" not in row]
    if huge and huge[0] is not None:
        print(f"\nhuge pages granted to the 10M-session table: {huge[0]:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
