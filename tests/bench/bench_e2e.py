"""End to end against HAProxy and nftables (issue 7): the same client, the same
three nginx servers and the same wrk settings, through three load balancers
in the load-balancer namespace of the e2e topology (tests/e2e/topology.py,
addresses of 198.18.0.0/15 only), measured in one run, in turns
(fulcrum nftables haproxy fulcrum nftables haproxy ...):

  fulcrum   fulcrum-data's TUN path, routed as the e2e topology routes it
            (ip rule 100: client traffic to the façade -> fs-web-in; rule 200:
            the servers' packets -> fs-web-out);
  nftables  the kernel's DNAT: table ip fulcrum_bench, prerouting
            `dnat to numgen inc mod 3 map {...}` over the three servers, the
            servers' replies routed back by the main table (conntrack un-NATs);
  haproxy   HAProxy in TCP mode (balance roundrobin, the three servers),
            listening on the façade address 198.18.0.10:80.

The topology is built once. Before each turn every path is switched off
(HAProxy stopped, the nft table deleted, Fulcrum's diversion routes removed)
and exactly one is switched on, then checked: a probe of 12 short requests
must be answered by all three servers and counted by that path alone
(Fulcrum's sessions_created, the nft rule's counter, HAProxy's frontend
`stot`), and Fulcrum's IPv4 packets (rx_packets - ipv6_passed) must not
move while the others serve. Each turn runs wrk twice: short connections
(-H 'Connection: close') and keep-alive. Each mode's connections come from
its own client address (198.18.0.2/.3/.4, see Bench.switch), and the client
and LB namespaces get tcp_tw_reuse=1 and ports 1024-65535 (see SYSCTLS): both
found necessary, see there.

  sudo scripts/bench-e2e [--turns 3] [--duration 5] [--threads 2] [--connections 32]
                         [--loops 2] [--profile] [--fulcrum-variant NAME=ARGS ...]

--fulcrum-variant (repeatable) measures Fulcrum more than once per turn, as
modes fulcrum-NAME, each with fulcrum-data restarted with its extra ARGS
(split on spaces) before its turn, e.g. --fulcrum-variant "uring=--tun-io
uring" --fulcrum-variant "syscalls=--tun-io syscalls": the variants then
share every turn's conditions, and the summary compares each with the first.

--profile adds one more, unmeasured, short-connection run through Fulcrum
under `perf record -g` of fulcrum-data and prints where its time goes.

Prints per mode and connection style the median requests/s of the turns,
p50 and p99 latency (medians of the turns), the CPU the whole machine spent
per request and the load balancer process's own (Fulcrum, HAProxy), then
Fulcrum/nftables and Fulcrum/HAProxy (requests/s) and Fulcrum's p99 minus
HAProxy's, against issue 7's targets. Everything runs in
the topology's namespaces and goes with them, also on failure or Ctrl-C."""
import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import topology  # noqa: E402
from topology import FACADE, SERVERS, TABLE_FACADE, TABLE_REPLIES, wait_for  # noqa: E402

MODES = ("fulcrum", "nftables", "haproxy")  # without --fulcrum-variant
STYLES = ("close", "keep-alive")
NFT_TABLE = "fulcrum_bench"
PROBE_REQUESTS = 12
HZ = os.sysconf("SC_CLK_TCK")
def is_fulcrum(mode):
    return mode == "fulcrum" or mode.startswith("fulcrum-")


def modes_of(variants):
    """The modes of a run, and the client address each mode's connections
    come from (see Bench.switch): Fulcrum's variants (or plain "fulcrum"),
    nftables, HAProxy."""
    modes = ["fulcrum-" + name for name in variants] or ["fulcrum"]
    modes += ["nftables", "haproxy"]
    if len(modes) > len(topology.CLIENT_EXTRA):
        raise SystemExit("at most %d Fulcrum variants" % (len(topology.CLIENT_EXTRA) - 2))
    return modes, {m: topology.CLIENT_EXTRA[i] for i, m in enumerate(modes)}

CONFIG = "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n" \
         "set application shop service-set web facade %s port 80 algorithm round-robin\n" % FACADE + \
         "".join("set application shop server %s address %s port 80\n" % (n, a) for n, a in sorted(SERVERS.items()))

NFT_RULES = """\
table ip {table} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "cli0" ip daddr {facade} tcp dport 80 counter dnat to numgen inc mod 3 map {{ {map} }}
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 8000
    stats socket {dir}/haproxy.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend facade
    bind {facade}:80
    default_backend servers
backend servers
    balance roundrobin
{servers}
"""

# One short request after another from the client namespace: the X-Server
# header of each answer ("status:server").
PROBE = r"""
import http.client, sys
out = []
for _ in range(int(sys.argv[2])):
    try:
        c = http.client.HTTPConnection(sys.argv[1], 80, timeout=2)
        c.request("GET", "/", headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        out.append("%d:%s" % (r.status, r.getheader("X-Server")))
        c.close()
    except Exception as e:
        out.append("0:" + type(e).__name__)
print(" ".join(out))
"""


class ModeUnavailable(Exception):
    pass


def say(*a):
    print(*a, flush=True)


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", value)
    if not m:
        raise ValueError("wrk latency %r" % value)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(text):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if not rps or not total:
        raise RuntimeError("wrk gave no result:\n" + text)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs = {}
    if errors:
        errs = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), errors.groups()) if int(v)}
    if non2xx:
        errs["non-2xx"] = int(non2xx.group(1))
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)), "p50": to_ms(lat["50"]),
            "p99": to_ms(lat["99"]), "errors": errs}


def cpu_times():
    """(busy, softirq) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return user + nice + system + irq + softirq + steal, softirq


def proc_cpu(pid):
    """utime + stime of a process and its threads, in jiffies (0 when gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except Exception as e:  # only for the report
        return "? (%s)" % e


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    return [
        "machine: %s, %d cores (shared by wrk, the three nginx, the load balancer and the kernel's "
        "forwarding: every figure is bound by that sharing), %d GiB, kernel %s"
        % (model, os.cpu_count(), mem, platform.release()),
        "software: %s; %s; %s; %s" % (first_line(["haproxy", "-v"]).split(" - ")[0], first_line(["nft", "--version"]),
                                      first_line(["nginx", "-v"]), first_line(["wrk", "-v"]).split(" Copyright")[0]),
        "fulcrum: %s (git %s%s)" % (topology.binary("fulcrum-data"),
                                   first_line(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                                               "--short", "HEAD"]),
                                   "" if not subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                                             "diff", "--quiet", "HEAD", "--", "../../data-plane"],
                                                            capture_output=True).returncode else ", data-plane dirty"),
    ]


class Bench:
    def __init__(self, t, args):
        self.t, self.args = t, args
        self.unavailable = {}                        # mode -> why
        self.variants = dict(args.fulcrum_variant)  # mode name -> extra fulcrum-data arguments
        self.modes, self.client_source = modes_of([n[len("fulcrum-"):] for n in self.variants])
        self.variant_running = None                  # the variant fulcrum-data runs as (None: plain)
        self.runs = {(m, s): [] for m in self.modes for s in STYLES}
        self.checks = []                             # what the verifications saw
        self.fulcrum_pid = t.procs["data"][0].pid    # ip netns exec execs fulcrum-data
        self.haproxy_dir = os.path.join(t.dir, "haproxy")
        self.rx_after_fulcrum = None                 # Fulcrum's IPv4 packets when its turn ended

    # ------------------------------------------------------------ Fulcrum's counters
    def fulcrum_counters(self):
        """Fulcrum's counters from a status report sent after now (one a second)."""
        since = int(time.time() * 1000)
        wait_for("a status report of lb1",
                 lambda: int(self.t.engines().get("lb1", {}).get("last_status_unix_ms", 0)) > since + 20,
                 timeout=5, interval=0.1)
        return self.t.counters()

    @staticmethod
    def fulcrum_ipv4(c):
        """IPv4 packets Fulcrum received: rx_packets less the IPv6 link-local
        chatter (router solicitations, MLD) the kernel sends on the TUN devices."""
        return c.get("rx_packets", 0) - c.get("ipv6_passed", 0) - c.get("non_ip_passed", 0)

    @staticmethod
    def fulcrum_sessions(c):
        return c.get("sessions_created", 0)  # a reopened session is counted here too

    # ------------------------------------------------------------ switching
    def nft(self, *argv, check=True, stdin=None):
        return self.t.ns(self.t.ns_lb, ["nft"] + list(argv), check=check, input=stdin)

    def nft_table_present(self):
        r = self.nft("list", "tables", check=False)
        return r.returncode == 0 and ("table ip %s" % NFT_TABLE) in r.stdout

    def facade_listened(self):
        r = self.t.lb("ss", "-Hltn", "src", "%s:80" % FACADE, check=False)
        return bool(r.stdout.strip())

    def fulcrum_routed(self):
        a = self.t.lb("ip", "route", "show", "table", str(TABLE_FACADE), check=False).stdout.strip()
        b = self.t.lb("ip", "route", "show", "table", str(TABLE_REPLIES), check=False).stdout.strip()
        return bool(a or b)

    def all_off(self):
        """No path serves the façade: HAProxy stopped, nft table gone, Fulcrum's routes gone."""
        if "haproxy" in self.t.procs:
            self.t.stop("haproxy", signal.SIGTERM, 5)
            sock = os.path.join(self.haproxy_dir, "haproxy.sock")
            if os.path.exists(sock):
                os.unlink(sock)
        if self.nft_table_present():
            self.nft("delete", "table", "ip", NFT_TABLE)
        self.t.lb("ip", "route", "flush", "table", str(TABLE_FACADE), check=False)
        self.t.lb("ip", "route", "flush", "table", str(TABLE_REPLIES), check=False)
        wait_for("nothing listening on the façade", lambda: not self.facade_listened(), timeout=5)
        self.assert_only(None)

    def assert_only(self, mode):
        state = {"fulcrum": self.fulcrum_routed(), "nftables": self.nft_table_present(),
                 "haproxy": self.t.running("haproxy") or self.facade_listened()}
        on = [m for m, v in state.items() if v]
        if on != (["fulcrum" if is_fulcrum(mode) else mode] if mode else []):
            raise AssertionError("expected only %s to serve the façade, found %s" % (mode, on or "none"))

    def switch(self, mode):
        self.all_off()
        # Each mode's connections come from its own client address, so that
        # TCP state one mode leaves behind for a 4-tuple never meets the next
        # mode's connections. Seen without it: HAProxy closes first toward the
        # client, so the LB namespace keeps TIME_WAIT sockets on the façade;
        # in the next Fulcrum turn a client SYN with such a 4-tuple is matched
        # to one by early demux and the kernel drops forwarded packets that
        # carry a socket: the SYN never reaches Fulcrum (and the client's
        # TIME_WAITs, Fulcrum's sessions and conntrack's entries would mix).
        self.t.ns(self.t.ns_cli, ["ip", "route", "replace", FACADE + "/32", "dev", "eth0",
                                  "src", self.client_source[mode]])
        if mode in self.variants and self.variant_running != mode:
            # Another variant's turn: fulcrum-data again with this one's
            # arguments (its counters start from 0).
            self.t.stop("data")
            # Its TUN devices go a moment after it: the new one must not
            # take the old ones for its own.
            wait_for("the TUN devices of the stopped fulcrum-data gone", lambda: not any(
                self.t.lb("ip", "link", "show", dev, check=False).returncode == 0
                for dev in (topology.INSIDE, topology.OUTSIDE)), timeout=10)
            self.t.data_args = self.variants[mode]
            self.t.start_data()
            self.fulcrum_pid = self.t.procs["data"][0].pid
            self.variant_running = mode
            self.rx_after_fulcrum = None
        if is_fulcrum(mode):
            c = self.fulcrum_counters()
            if self.rx_after_fulcrum is not None:
                moved = self.fulcrum_ipv4(c) - self.rx_after_fulcrum
                self.checks.append("Fulcrum's IPv4 packets (rx_packets - ipv6_passed) while the others served: %+d"
                                   % moved)
                if moved:
                    raise AssertionError("Fulcrum received %d packets while it was switched off" % moved)
            self.t.route_into_fulcrum()
        elif mode == "nftables":
            r = self.nft("list", "ruleset", check=False)
            if r.returncode != 0:
                raise ModeUnavailable("`nft list ruleset` in the LB namespace failed: "
                                      + (r.stderr or r.stdout).strip())
            rules = NFT_RULES.format(table=NFT_TABLE, facade=FACADE, map=", ".join(
                "%d : %s" % (i, a) for i, (_, a) in enumerate(sorted(SERVERS.items()))))
            r = self.nft("-f", "-", check=False, stdin=rules)
            if r.returncode != 0:
                raise ModeUnavailable("nft could not load the DNAT table: " + (r.stderr or r.stdout).strip())
        elif mode == "haproxy":
            if not shutil.which("haproxy"):
                raise ModeUnavailable("haproxy is not installed")
            os.makedirs(self.haproxy_dir, exist_ok=True)
            conf = os.path.join(self.haproxy_dir, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY_CONF.format(dir=self.haproxy_dir, facade=FACADE, servers="".join(
                    "    server %s %s:80\n" % (n, a) for n, a in sorted(SERVERS.items()))))
            self.t.start("haproxy", self.t.ns_lb, [shutil.which("haproxy"), "-db", "-f", conf])

            deadline = time.monotonic() + 10
            while not (self.facade_listened() and os.path.exists(os.path.join(self.haproxy_dir, "haproxy.sock"))):
                if not self.t.running("haproxy"):
                    raise ModeUnavailable("haproxy exited: " + self.t.log("haproxy")[-1000:].strip())
                if time.monotonic() > deadline:
                    raise AssertionError("haproxy not listening on %s:80 after 10 s" % FACADE)
                time.sleep(0.05)
        self.assert_only(mode)

    # ------------------------------------------------------------ what each path counted
    def haproxy_stat(self):
        """{(proxy, server): stot} from HAProxy's stats socket."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(os.path.join(self.haproxy_dir, "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname"):
                out[(row["pxname"], row["svname"])] = int(row.get("stot") or 0)
        return out

    def nft_counter(self):
        r = self.nft("list", "table", "ip", NFT_TABLE)
        return int(re.search(r"counter packets (\d+)", r.stdout).group(1))

    def path_count(self, mode):
        """New connections the path saw so far (Fulcrum: sessions created)."""
        if is_fulcrum(mode):
            return self.fulcrum_sessions(self.fulcrum_counters())
        if mode == "nftables":
            return self.nft_counter()  # the rule sees the first packet of each connection
        return self.haproxy_stat()[("facade", "FRONTEND")]

    def probe(self):
        r = self.t.ns(self.t.ns_cli, ["python3", "-c", PROBE, FACADE, str(PROBE_REQUESTS)], timeout=60)
        return r.stdout.split()

    def verify(self, mode):
        before = self.path_count(mode)
        hs = self.haproxy_stat() if mode == "haproxy" else None
        answers = self.probe()
        bad = [a for a in answers if not a.startswith("200:")]
        served = sorted(a.split(":", 1)[1] for a in answers if a.startswith("200:"))
        if bad or set(served) != set(SERVERS):
            raise AssertionError("%s: the probe got %s" % (mode, " ".join(answers)))
        if is_fulcrum(mode):
            got = wait_for("Fulcrum counting the probe", lambda: (lambda n: n if n - before >= PROBE_REQUESTS else 0)(
                self.path_count(mode)), timeout=6) - before
        else:
            got = self.path_count(mode) - before
        if got < PROBE_REQUESTS:
            raise AssertionError("%s counted %d of the probe's %d connections" % (mode, got, PROBE_REQUESTS))
        spread = ", ".join("%s %d" % (s, served.count(s)) for s in sorted(SERVERS))
        what = "sessions_created" if is_fulcrum(mode) else {"nftables": "nft rule counter",
                                                             "haproxy": "frontend stot"}[mode]
        if hs is not None:
            hs2 = self.haproxy_stat()
            spread += " (HAProxy per server: %s)" % ", ".join(
                "%s +%d" % (s, hs2[("servers", s)] - hs[("servers", s)]) for s in sorted(SERVERS))
        self.checks.append("%s: %s +%d for %d probe requests; answered by %s" % (mode, what, got, PROBE_REQUESTS,
                                                                                 spread))

    # ------------------------------------------------------------ measuring
    def lb_pid(self, mode):
        if is_fulcrum(mode):
            return self.fulcrum_pid
        if mode == "haproxy":
            return self.t.procs["haproxy"][0].pid
        return None

    def wrk(self, mode, style, record=True):
        a = self.args
        argv = ["wrk", "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--latency",
                "--timeout", "2s"]
        if style == "close":
            argv += ["-H", "Connection: close"]
        argv.append("http://%s/" % FACADE)
        count0 = self.path_count(mode)
        pid = self.lb_pid(mode)
        lb0, (busy0, soft0), t0 = proc_cpu(pid) if pid else 0, cpu_times(), time.monotonic()
        r = self.t.ns(self.t.ns_cli, argv, timeout=a.duration + 30)
        lb1, (busy1, soft1), t1 = proc_cpu(pid) if pid else 0, cpu_times(), time.monotonic()
        res = parse_wrk(r.stdout)
        res["connections"] = self.path_count(mode) - count0
        res["cpu_us"] = (busy1 - busy0) / HZ / max(res["requests"], 1) * 1e6
        res["softirq_share"] = (soft1 - soft0) / max(busy1 - busy0, 1)
        res["lb_cores"] = (lb1 - lb0) / HZ / (t1 - t0) if pid else None
        # The load balancer process's own CPU per request (user and system
        # time of its threads; not the softirq work it causes elsewhere).
        res["lb_us"] = (lb1 - lb0) / HZ / max(res["requests"], 1) * 1e6 if pid else None
        res["busy_cores"] = (busy1 - busy0) / HZ / (t1 - t0)
        if record:
            self.runs[(mode, style)].append(res)
        say("  %-9s %-10s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  %5.1f µs CPU/req  cores busy %.2f%s  "
            "path connections %d%s" % (
                mode, style, res["rps"], res["p50"], res["p99"], res["cpu_us"], res["busy_cores"],
                "" if res["lb_cores"] is None else " (LB process %.2f, %.1f µs/req)" % (
                    res["lb_cores"], res["lb_us"]),
                res["connections"], ("  errors %s" % res["errors"]) if res["errors"] else ""))

    def turn(self, n):
        say("turn %d" % n)
        for mode in self.modes:
            if mode in self.unavailable:
                continue
            try:
                self.switch(mode)
                self.verify(mode)
            except ModeUnavailable as e:
                self.unavailable[mode] = str(e)
                say("  %s: NOT MEASURED: %s" % (mode, e))
                self.all_off()
                continue
            for style in STYLES:
                self.wrk(mode, style)
            if is_fulcrum(mode):
                self.rx_after_fulcrum = self.fulcrum_ipv4(self.fulcrum_counters())
        self.all_off()

    def profile(self):
        """One more short-connection run through Fulcrum under perf (not
        counted: perf slows it): fulcrum-data's time, user space against the
        kernel, and the kernel paths it runs in its system calls."""
        if not shutil.which("perf"):
            say("--profile: perf is not installed (Debian: linux-perf)")
            return
        say("profile (unmeasured run, perf record -g -p fulcrum-data):")
        mode = self.modes[0]
        say("  (%s)" % mode)
        self.switch(mode)
        self.verify(mode)
        data = os.path.join(self.t.dir, "perf.data")
        p = subprocess.Popen(["perf", "record", "-q", "-g", "-o", data, "-p", str(self.fulcrum_pid), "--",
                              "sleep", str(max(1, self.args.duration - 1))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.wrk(mode, "close", record=False)
        finally:
            p.wait(30)
        self.all_off()
        dso = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g",
                              "none"], capture_output=True, text=True, timeout=120).stdout
        for line in dso.splitlines():
            if "%" in line and not line.startswith("#") and float(line.split("%")[0]) >= 0.5:
                say("  self  " + line.strip())
        sym = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g",
                              "none"], capture_output=True, text=True, timeout=120).stdout
        wanted = ("tun_chr_write_iter", "tun_chr_read_iter", "__netif_receive_skb_one_core", "process_backlog",
                  "tcp_v4_rcv", "ip_forward", "fib_table_lookup", "do_sys_poll", "try_to_wake_up",
                  "PacketProcessor::processBurst", "SessionTable::lockContended", "io_uring_enter", "io_issue_sqe")
        for line in sym.splitlines():
            if not line.startswith("#") and any(w in line for w in wanted):
                say("  with children " + " ".join(line.split()))

    def final_check(self):
        if self.rx_after_fulcrum is not None:
            moved = self.fulcrum_ipv4(self.fulcrum_counters()) - self.rx_after_fulcrum
            self.checks.append("Fulcrum's IPv4 packets (rx_packets - ipv6_passed) while the others served "
                               "(last turn): %+d" % moved)
            if moved:
                raise AssertionError("Fulcrum received %d packets while it was switched off" % moved)

    # ------------------------------------------------------------ report
    def summary(self):
        med = statistics.median
        agg = {}
        for key, runs in self.runs.items():
            if runs:
                agg[key] = {k: med([r[k] for r in runs]) for k in ("rps", "p50", "p99", "cpu_us")}
                agg[key]["lb_us"] = med([r["lb_us"] for r in runs]) if runs[0]["lb_us"] is not None else None
                agg[key]["all"] = [r["rps"] for r in runs]
                errs = {}
                for r in runs:
                    for k, v in r["errors"].items():
                        errs[k] = errs.get(k, 0) + v
                agg[key]["errors"] = errs
        say("")
        say("| path | connections | requests/s (median) | per turn | p50 ms | p99 ms | CPU µs/request "
            "| LB process µs/request | wrk errors |")
        say("|---|---|---|---|---|---|---|---|---|")
        for style in STYLES:
            for mode in self.modes:
                a = agg.get((mode, style))
                if not a:
                    say("| %s | %s | not measured | | | | | | |" % (mode, style))
                    continue
                say("| %s | %s | **%s** | %s | %.2f | %.2f | %.1f | %s | %s |" % (
                    mode, style, "{:,.0f}".format(a["rps"]), " / ".join("{:,.0f}".format(x) for x in a["all"]),
                    a["p50"], a["p99"], a["cpu_us"], "" if a["lb_us"] is None else "%.1f" % a["lb_us"],
                    ", ".join("%s %d" % kv for kv in sorted(a["errors"].items())) or "none"))
        say("")
        fulcrums = [m for m in self.modes if is_fulcrum(m)]
        for style, mode in [(s, m) for s in STYLES for m in fulcrums]:
            f = agg.get((mode, style))
            if not f:
                continue
            parts = []
            first = agg.get((fulcrums[0], style))
            if mode != fulcrums[0] and first:
                # Per turn too: the variants ran back to back in each turn.
                mine, theirs = self.runs[(mode, style)], self.runs[(fulcrums[0], style)]
                per_turn = [a["rps"] / b["rps"] for a, b in zip(mine, theirs)]
                parts.append("%s/%s %.2f (per turn %s; machine CPU/request %.2f, fulcrum-data CPU/request "
                             "%.2f)" % (mode, fulcrums[0], f["rps"] / first["rps"],
                                        " ".join("%.2f" % x for x in per_turn), f["cpu_us"] / first["cpu_us"],
                                        f["lb_us"] / first["lb_us"]))
            for other, target in (("nftables", 0.8), ("haproxy", 1.5)):
                o = agg.get((other, style))
                if not o:
                    parts.append("Fulcrum/%s: not measured" % other)
                    continue
                ratio = f["rps"] / o["rps"]
                verdict = ""
                if style == "close":
                    verdict = " (target >= %.1f: %s)" % (target, "met" if ratio >= target else
                                                          "missed by %.0f %%" % ((1 - ratio / target) * 100))
                parts.append("%s/%s %.2f%s" % (mode, other, ratio, verdict))
            h = agg.get(("haproxy", style))
            if h:
                d = f["p99"] - h["p99"]
                parts.append("%s p99 - HAProxy p99 = %+.2f ms%s" % (
                    mode, d, (" (target <= 0: %s)" % ("met" if d <= 0 else "missed")) if style == "close" else ""))
            say("%s: %s" % (style, "; ".join(parts)))
        for mode, why in self.unavailable.items():
            say("%s: NOT MEASURED: %s" % (mode, why))


# Usual settings for a load generator and a proxy that open many short
# connections (per namespace, so nothing outside the topology changes): wrk
# often closes first and so keeps the TIME_WAIT sockets; with the default
# 28,000 ports and no reuse, connect() soon searches the whole range for a
# free port (seen: wrk at 100 % system time, HAProxy's short connections
# falling from 17,000 to 1,500 requests/s within three runs). The load
# balancer's namespace gets the same for HAProxy's connections to the servers;
# Fulcrum and nftables make no connections of their own there.
SYSCTLS = (("net.ipv4.tcp_tw_reuse", "1"), ("net.ipv4.ip_local_port_range", "1024 65535"))


def tune(t):
    for ns in (t.ns_cli, t.ns_lb):
        for key, value in SYSCTLS:
            t.ns(ns, ["sysctl", "-qw", "%s=%s" % (key, value)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds of wrk per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--loops", type=int, default=2, help="Fulcrum's packet loops (default 2, one per core)")
    ap.add_argument("--profile", action="store_true", help="one more run through Fulcrum under perf record")
    ap.add_argument("--fulcrum-variant", action="append", default=[], metavar="NAME=ARGS",
                    help="measure Fulcrum as mode fulcrum-NAME (instead of plain fulcrum), fulcrum-data "
                         "restarted with the extra arguments ARGS for its turns (repeatable)")
    args = ap.parse_args()
    variants = []
    for v in args.fulcrum_variant:
        name, sep, extra = v.partition("=")
        if not sep or not re.fullmatch(r"[\w.-]+", name) or name in [n for n, _ in variants]:
            ap.error("--fulcrum-variant %r: NAME=ARGS, a distinct word as NAME" % v)
        variants.append(("fulcrum-" + name, extra.split()))
    args.fulcrum_variant = variants
    if os.geteuid() != 0:
        sys.exit("bench_e2e needs root (network namespaces, TUN devices)")
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit("%s is not installed (scripts/setup-deps)" % tool)
    modes, sources = modes_of([m[len("fulcrum-"):] for m, _ in args.fulcrum_variant])
    start = time.monotonic()
    for line in machine():
        say(line)
    say("wrk -t%d -c%d -d%ds --latency --timeout 2s [-H 'Connection: close'] http://%s/ ; %d turns, order %s"
        % (args.threads, args.connections, args.duration, FACADE, args.turns, " ".join(modes)))
    say("Fulcrum: %d loops, no HTTP filter%s; client address per mode: %s" % (
        args.loops, "".join("; %s: fulcrum-data %s" % (m, " ".join(a) or "(defaults)")
                            for m, a in args.fulcrum_variant),
        ", ".join("%s %s" % kv for kv in sources.items())))
    with topology.Topology(loops=args.loops) as t:
        t.up(CONFIG)
        tune(t)
        b = Bench(t, args)
        # nftables in this kernel: say so clearly, go on with the others.
        r = b.nft("list", "ruleset", check=False)
        if r.returncode != 0:
            b.unavailable["nftables"] = "`nft list ruleset` in the LB namespace failed: %s" % (
                (r.stderr or r.stdout).strip())
            say("nftables DOES NOT WORK in this kernel: %s; going on with the others" % b.unavailable["nftables"])
        for n in range(1, args.turns + 1):
            b.turn(n)
        b.final_check()
        if args.profile:
            b.profile()
        say("")
        say("checks (each turn, before measuring; exactly one path on):")
        for c in b.checks:
            say("  " + c)
        b.summary()
    left = t.leftovers() + ([t.dir] if os.path.exists(t.dir) else [])
    say("")
    say("cleanup: %s; took %.0f s" % ("left behind: %s" % left if left else
                                     "every namespace, process and file of the run removed",
                                     time.monotonic() - start))


if __name__ == "__main__":
    main()
