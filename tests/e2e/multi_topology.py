"""Several fulcrum-data engines acting as one load balancer (issue 6): the
namespaces, daemons and routing for test_multi_engine.py (stdlib only;
builds on topology.py: same naming prefix, cleanup, nginx servers, CLI).

    <p>-cli   198.18.0.1/24 (+ .2-.9 and .100-.229 as more client addresses),
              default via 198.18.0.254
        | veth eth0 <-> cli0
    <p>-rtr   198.18.0.254/24 on cli0 (proxy ARP for the façade), and
              198.18.0.10/32 nexthop via lb1 nexthop via lb2: ECMP with
              layer-4 hashing (fib_multipath_hash_policy=1)
        | veth up1 <-> up0 (198.18.2.1/30 - .2)   | veth up2 <-> up0 (198.18.2.5/30 - .6)
    <p>-lb1, <p>-lb2   each: one fulcrum-data (--engine-id lbN, its own TUN
              devices fs-web-in / fs-web-out), the façade on lo, policy
              routing as topology.py does for one engine, 198.18.1.254/32 on
              srv1..srv3 with host routes to the servers
        | veth ctl0 <-> lbN (198.18.3.2/30, 198.18.3.6/30)
    <p>-ctl   198.18.3.100/32 on lo: fulcrum-control (:7080) and redis-server
              (:6379, own temp dir, --save '' --appendonly no); both engines
              reach it over their ctl0 veth
    <p>-sN    198.18.1.1N/32 on eth1 (veth to lb1's srvN) and on eth2 (veth to
              lb2's srvN); nginx as in topology.py, and a "push" service on
              :7000 (a line every 0.25 s to each connection; the client only
              listens)

How a server's replies reach the engine that NATed the connection
------------------------------------------------------------------
Fulcrum does not touch the source address: a server answers the client's
own address, and only the engine holding the session can give the reply
back the façade as source. Neither the route to the client nor an ECMP hash
on the server side can tell the two engines' connections apart (the router's
layer-4 hash of client->façade is not reproducible from server->client), and
this machine has no nft/iptables tools (so no conntrack marks), no bridge,
dummy or VRF devices, and no tc skbedit action. What it does have is tc with
cls_bpf, and clang, which is all the classic "reply through the interface the
connection came in on" needs:

  - a 3-instruction BPF program on the ingress of each server veth (tc
    clsact, direct action) sets skb->mark to the veth's number (eth1: 1,
    eth2: 2), i.e. to the engine the packet came from;
  - net.ipv4.tcp_fwmark_accept=1: the SYN's mark becomes the mark of the
    accepted socket (and of the SYN+ACK), so every packet the server sends
    on that connection carries the mark of the engine the SYN came through;
    net.ipv4.fwmark_reflect=1 does the same for RSTs and ICMP errors;
  - ip rule fwmark 1 lookup 11 / fwmark 2 lookup 12: table 11 routes to
    198.18.1.254 on eth1 (lb1), table 12 on eth2 (lb2).

So a connection's replies follow its SYN, whichever engine the router's hash
chose, per connection, also for many connections of one client address.
When an engine fails (test 3), fail_over() does on both sides what the
network would: the router's ECMP route loses that engine's nexthop, and in
every server the failed engine's table points at the survivor (its gateway
"moves", as with VRRP), because established sockets keep their mark.

Checked: 200 parallel connections of one client address split about evenly
over the two engines, every reply un-NATed by the engine that made the
session (ip rule fwmark/tables, `ss -tie` in a server shows fwmark:0x1/0x2).

One more rule than topology.py in each LB: table 100 and table 101 also hold
a blackhole route with a high metric. While a fulcrum-data is down (its TUN
routes gone), packets to the façade are dropped there instead of reaching the
façade's local address (which answers with an RST and would kill
connections the other engine can continue), and server replies are dropped
instead of leaving un-NATed.

Names: every namespace is `fe<pid>-<n>-{cli,rtr,lb1,lb2,ctl,s1..s3}` and the
temp directory `fulcrum-e2e-<pid>-<n>-*`, as topology.py's (whose cleanup
helpers remove them, also leftovers of killed runs); close() kills every
process and removes every namespace, also after a failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topology  # noqa: E402
from topology import (CLIENT, CLIENT_EXTRA, CONTROL_PORT, FACADE, HEARTBEAT_MS, INSIDE,  # noqa: E402,F401
                      OUTSIDE, PRIO_FACADE, PRIO_LOCAL, PRIO_REPLIES, SERVER_GW, SERVERS,
                      TABLE_FACADE, TABLE_REPLIES, Topology, binary, wait_for)

ENGINES = ("lb1", "lb2")
ROUTER_CLI = "198.18.0.254"
CLIENT_POOL = ["198.18.0.%d" % i for i in range(100, 230)]  # more client addresses
# router side, LB side of each engine's uplink (/30)
UPLINK = {"lb1": ("198.18.2.1", "198.18.2.2"), "lb2": ("198.18.2.5", "198.18.2.6")}
# control side, LB side of each engine's link to the control namespace (/30)
CTL_LINK = {"lb1": ("198.18.3.1", "198.18.3.2"), "lb2": ("198.18.3.5", "198.18.3.6")}
CTL = "198.18.3.100"
REDIS_PORT = 6379
REDIS_URL = "redis://%s:%d" % (CTL, REDIS_PORT)
MARK = {"lb1": 1, "lb2": 2}           # server side: eth<mark>, fwmark <mark>, table 10 + mark
BLACKHOLE_METRIC = 4096

MARK_BPF = r"""
/* tc ingress, direct action: every packet gets the mark of the veth it came
   in on (multi_topology.py: a connection's replies follow its SYN). */
struct __sk_buff { unsigned int len, pkt_type, mark; };
__attribute__((section("tc"), used)) int set_mark(struct __sk_buff *skb) {
  skb->mark = MARK;
  return 0; /* TC_ACT_OK */
}
char _license[] __attribute__((section("license"), used)) = "GPL";
"""

# Run in the client namespace: opens every connection of argv[1] (JSON: host,
# port, path, timeout, conns: [[source, local port or 0], ...]) at once (a
# barrier between bind and connect), sends one request with Connection: close
# on each, and prints one JSON list: source, port, status, server (X-Server),
# body, or error.
CONNECT_SCRIPT = r"""
import json, socket, sys, threading
spec = json.loads(sys.argv[1])
conns = spec["conns"]
out = [None] * len(conns)
barrier = threading.Barrier(len(conns))
def one(i, source, lport):
    r = {"source": source}
    s = socket.socket()
    try:
        s.settimeout(spec["timeout"])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((source, lport))
        r["port"] = s.getsockname()[1]
        try:
            barrier.wait(spec["timeout"])
        except threading.BrokenBarrierError:
            pass
        s.connect((spec["host"], spec["port"]))
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (spec["path"], spec["host"])).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        r["status"] = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-server":
                r["server"] = v.strip()
        r["body"] = body.decode("utf-8", "replace")
    except Exception as e:
        r["error"] = repr(e)
    finally:
        s.close()
    out[i] = r
threads = [threading.Thread(target=one, args=(i, c[0], c[1])) for i, c in enumerate(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
"""

# The "push" service on each server (TICK_PORT): every accepted connection
# gets one line "<server> <n>\n" every TICK_INTERVAL s, n = 0, 1, ...; the
# client never sends anything after its SYN handshake.
TICK_PORT = 7000
TICK_INTERVAL = 0.25
TICKER_SERVER = r"""
import socket, sys, threading, time
address, port, name, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((address, port))
ls.listen(128)
def serve(c):
    n = 0
    try:
        while True:
            c.sendall(("%s %d\n" % (name, n)).encode())
            n += 1
            time.sleep(interval)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# Run in the client namespace: one connection to host:port per local port of
# argv[4] (comma-separated) from argv[3]; prints "<local port> <unix time>
# <line>" for every line received, "<local port> closed" or "<local port>
# error ..." at the end.
TICKER_CLIENT = r"""
import socket, sys, threading, time
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def say(text):
    with lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
def run(lport):
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((source, lport))
        s.connect((host, port))
        for line in s.makefile("rb"):
            say("%d %.3f %s" % (lport, time.time(), line.decode().strip()))
        say("%d closed" % lport)
    except Exception as e:
        say("%d error %r" % (lport, e))
threads = [threading.Thread(target=run, args=(int(p),)) for p in sys.argv[4].split(",")]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


class MultiTopology(Topology):
    """Two engines behind an ECMP router, one control plane and one Redis."""

    def __init__(self, loops=1, capacity=None):
        super().__init__(loops=loops, capacity=capacity)
        self.ns_lb = None  # topology.py's single LB namespace does not exist here
        self.ns_rtr, self.ns_ctl = self.prefix + "rtr", self.prefix + "ctl"
        self.ns_lbs = {e: self.prefix + e for e in ENGINES}
        self.redis_dir = os.path.join(self.dir, "redis")

    # ------------------------------------------------------------ plumbing
    def lbn(self, engine, *argv, check=True):
        return self.ns(self.ns_lbs[engine], argv, check=check)

    def rtr(self, *argv, check=True):
        return self.ns(self.ns_rtr, argv, check=check)

    def ctl(self, *argv, check=True):
        return self.ns(self.ns_ctl, argv, check=check)

    def _batch(self, ns, lines):
        """Many `ip` commands in one call (ip -batch)."""
        r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("ip -batch in %s failed: %s" % (ns, r.stderr.strip()))

    def _sysctls(self, ns, pairs):
        self.ns(ns, ["sysctl", "-qw"] + ["%s=%s" % kv for kv in pairs])

    # ------------------------------------------------------------ build
    def build(self):
        for ns in [self.ns_cli, self.ns_rtr, self.ns_ctl] + list(self.ns_lbs.values()) \
                + list(self.ns_srv.values()):
            self._add_ns(ns)
        self._build_client_and_router()
        self.ctl("ip", "addr", "add", CTL + "/32", "dev", "lo")
        for engine in ENGINES:
            self._build_lb(engine)
        self._build_servers()
        self.set_ecmp(ENGINES)

    def _build_client_and_router(self):
        self._sysctls(self.ns_rtr, [("net.ipv4.ip_forward", 1), ("net.ipv4.conf.all.rp_filter", 0),
                                    ("net.ipv4.conf.default.rp_filter", 0),
                                    ("net.ipv4.fib_multipath_hash_policy", 1)])
        self.rtr("ip", "link", "add", "cli0", "type", "veth", "peer", "name", "eth0", "netns", self.ns_cli)
        self.rtr("ip", "addr", "add", ROUTER_CLI + "/24", "dev", "cli0")
        # The façade lies in the client's /24 and is routed out of up1/up2.
        self._sysctls(self.ns_rtr, [("net.ipv4.conf.cli0.rp_filter", 0), ("net.ipv4.conf.cli0.proxy_arp", 1)])
        self.rtr("ip", "link", "set", "cli0", "up")
        lines = ["addr add %s/24 dev eth0" % a for a in [CLIENT] + CLIENT_EXTRA + CLIENT_POOL]
        lines += ["link set eth0 up", "route add default via %s" % ROUTER_CLI]
        self._batch(self.ns_cli, lines)

    def _build_lb(self, engine):
        ns, i = self.ns_lbs[engine], MARK[engine]
        self._sysctls(ns, [("net.ipv4.ip_forward", 1), ("net.ipv4.conf.all.rp_filter", 0),
                           ("net.ipv4.conf.default.rp_filter", 0), ("net.ipv4.conf.all.accept_local", 1),
                           ("net.ipv4.conf.default.accept_local", 1)])
        # uplink to the router
        rtr_side, lb_side = UPLINK[engine]
        self.rtr("ip", "link", "add", "up%d" % i, "type", "veth", "peer", "name", "up0", "netns", ns)
        self.rtr("ip", "addr", "add", rtr_side + "/30", "dev", "up%d" % i)
        self.rtr("sysctl", "-qw", "net.ipv4.conf.up%d.rp_filter=0" % i)
        self.rtr("ip", "link", "set", "up%d" % i, "up")
        # link to the control namespace (fulcrum-control and Redis on CTL)
        ctl_side, lb_ctl = CTL_LINK[engine]
        self.ctl("ip", "link", "add", engine, "type", "veth", "peer", "name", "ctl0", "netns", ns)
        self.ctl("ip", "addr", "add", ctl_side + "/30", "dev", engine)
        self.ctl("ip", "link", "set", engine, "up")
        lines = ["addr add %s/30 dev up0" % lb_side, "link set up0 up",
                 "route add default via %s dev up0" % rtr_side,
                 "addr add %s/30 dev ctl0" % lb_ctl, "link set ctl0 up",
                 "route add %s/32 via %s dev ctl0" % (CTL, ctl_side),
                 "addr add %s/32 dev lo" % FACADE,
                 # policy routing as topology.py (see its comments), plus the blackholes
                 "rule add iif up0 to %s lookup %d priority %d" % (FACADE, TABLE_FACADE, PRIO_FACADE),
                 "rule add lookup local priority %d" % PRIO_LOCAL,
                 "rule del lookup local priority 0",
                 "route add blackhole %s/32 table %d metric %d" % (FACADE, TABLE_FACADE, BLACKHOLE_METRIC),
                 "route add blackhole default table %d metric %d" % (TABLE_REPLIES, BLACKHOLE_METRIC)]
        for k in range(1, len(SERVERS) + 1):
            lines.append("rule add iif srv%d lookup %d priority %d" % (k, TABLE_REPLIES, PRIO_REPLIES))
        self._batch(ns, lines)
        self._sysctls(ns, [("net.ipv4.conf.up0.rp_filter", 0), ("net.ipv4.conf.ctl0.rp_filter", 0)])

    def _mark_object(self, mark):
        path = os.path.join(self.dir, "mark%d.o" % mark)
        if not os.path.exists(path):
            src = os.path.join(self.dir, "mark.c")
            with open(src, "w") as f:
                f.write(MARK_BPF)
            topology._run([shutil.which("clang") or "clang", "-O2", "-target", "bpf", "-DMARK=%d" % mark,
                           "-c", src, "-o", path])
        return path

    def _build_servers(self):
        for k, (name, address) in enumerate(sorted(SERVERS.items()), 1):
            ns = self.ns_srv[name]
            self._sysctls(ns, [("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0),
                               ("net.ipv4.tcp_fwmark_accept", 1), ("net.ipv4.fwmark_reflect", 1)])
            for engine in ENGINES:
                m, lb = MARK[engine], self.ns_lbs[engine]
                dev = "srv%d" % k
                self.lbn(engine, "ip", "link", "add", dev, "type", "veth", "peer", "name", "eth%d" % m,
                         "netns", ns)
                self._batch(lb, ["addr add %s/32 dev %s" % (SERVER_GW, dev), "link set %s up" % dev,
                                 "route add %s/32 dev %s" % (address, dev)])
                self.lbn(engine, "sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % dev)
                self._batch(ns, ["addr add %s/32 dev eth%d" % (address, m), "link set eth%d up" % m,
                                 "route add default via %s dev eth%d onlink table %d" % (SERVER_GW, m, 10 + m),
                                 "rule add fwmark %d lookup %d priority %d" % (m, 10 + m, 100 + m)])
                self.ns(ns, ["sysctl", "-qw", "net.ipv4.conf.eth%d.rp_filter=0" % m])
                self.ns(ns, ["tc", "qdisc", "add", "dev", "eth%d" % m, "clsact"])
                self.ns(ns, ["tc", "filter", "add", "dev", "eth%d" % m, "ingress", "bpf", "da",
                             "obj", self._mark_object(m), "sec", "tc"])
            # unmarked packets (none expected): toward lb1
            self.ns(ns, ["ip", "route", "add", "default", "via", SERVER_GW, "dev", "eth1", "onlink"])

    # ------------------------------------------------------------ routing changes
    def set_ecmp(self, engines):
        """The router's route to the façade: one nexthop per engine in `engines`."""
        argv = ["ip", "-n", self.ns_rtr, "route", "replace", FACADE + "/32"]
        if len(engines) == 1:
            argv += ["via", UPLINK[engines[0]][1], "dev", "up%d" % MARK[engines[0]]]
        else:
            for e in engines:
                argv += ["nexthop", "via", UPLINK[e][1], "dev", "up%d" % MARK[e]]
        topology._run(argv)

    def set_server_gateway(self, marked, engine):
        """Replies of connections that came in through `marked` go out toward `engine`."""
        for ns in self.ns_srv.values():
            topology._run(["ip", "-n", ns, "route", "replace", "default", "via", SERVER_GW,
                           "dev", "eth%d" % MARK[engine], "onlink", "table", str(10 + MARK[marked])])

    def fail_over(self, dead, survivor):
        """What the network does when engine `dead` fails: its share of the
        ECMP route and its server-side gateway go to `survivor`."""
        self.set_ecmp([e for e in ENGINES if e != dead])
        self.set_server_gateway(dead, survivor)

    def restore_routing(self):
        self.set_ecmp(ENGINES)
        for e in ENGINES:
            self.set_server_gateway(e, e)

    # ------------------------------------------------------------ Redis
    def start_redis(self):
        os.makedirs(self.redis_dir, exist_ok=True)
        self.start("redis", self.ns_ctl,
                   [shutil.which("redis-server") or "redis-server", "--bind", CTL, "--port", str(REDIS_PORT),
                    "--dir", self.redis_dir, "--save", "", "--appendonly", "no", "--protected-mode", "no",
                    "--daemonize", "no", "--logfile", ""])
        wait_for("redis answers PING", lambda: self.redis("PING", check=False).stdout.strip() == "PONG")

    def stop_redis(self, sig=signal.SIGTERM):
        self.stop("redis", sig)
        wait_for("redis stopped", lambda: not self.port_answers(self.ns_ctl, CTL, REDIS_PORT))

    def redis(self, *args, check=True):
        return self.ns(self.ns_ctl, ["redis-cli", "-h", CTL, "-p", str(REDIS_PORT)] + list(args), check=check,
                       timeout=10)

    # ------------------------------------------------------------ daemons
    def start_control(self):
        argv = [binary("fulcrum-control"), "--state-dir", self.state,
                "--listen", "%s:%d" % (CTL, CONTROL_PORT), "--heartbeat-ms", str(HEARTBEAT_MS)]
        self.start("control", self.ns_ctl, argv)
        wait_for("the control plane's sockets",
                 lambda: os.path.exists(self.socket) and self.port_answers(self.ns_ctl, CTL, CONTROL_PORT)
                 and self.cli("show", "engines", check=False).returncode == 0)

    def data_name(self, engine):
        return "data-" + engine

    def start_data(self, engine, timeout=15):
        argv = [binary("fulcrum-data"), "--control", "%s:%d" % (CTL, CONTROL_PORT),
                "--engine-id", engine, "--loops", str(self.loops)]
        if self.capacity:
            argv += ["--capacity", str(self.capacity)]
        argv += list(self.data_args)
        name = self.data_name(engine)
        self.start(name, self.ns_lbs[engine], argv)

        def ready():
            if not self.running(name):
                raise AssertionError("fulcrum-data %s exited: %s" % (engine, self.log(name)[-2000:]))
            return self.device_up_in(engine, INSIDE) and self.device_up_in(engine, OUTSIDE)
        wait_for("TUN devices of %s up" % engine, ready, timeout=timeout)
        self.route_into(engine)
        generation = self.generation()
        wait_for("engine %s on generation %d" % (engine, generation),
                 lambda: self.engine_generation(engine) == generation, timeout=timeout)

    def stop_data(self, engine, sig=signal.SIGTERM):
        return self.stop(self.data_name(engine), sig)

    def engine_running(self, engine):
        return self.running(self.data_name(engine))

    def device_up_in(self, engine, dev):
        r = self.lbn(engine, "ip", "-o", "link", "show", dev, check=False)
        flags = re.search(r"<([^>]*)>", r.stdout)
        return r.returncode == 0 and flags is not None and "UP" in flags.group(1).split(",")

    def route_into(self, engine):
        """The diversion routes into an engine's TUN devices (again after every start)."""
        for dev in (INSIDE, OUTSIDE):
            self.lbn(engine, "sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % dev)
        self.lbn(engine, "ip", "route", "replace", FACADE + "/32", "dev", INSIDE, "table", str(TABLE_FACADE))
        self.lbn(engine, "ip", "route", "replace", "default", "dev", OUTSIDE, "table", str(TABLE_REPLIES))

    def engine_generation(self, engine):
        return int(self.engines().get(engine, {}).get("config_generation", 0))

    def commit(self, comment="e2e"):
        """Commits the candidate and waits until every running engine applied it."""
        n = int(self.cli("commit", "-m", comment, json_out=True)["commit_number"])
        for e in ENGINES:
            if self.engine_running(e):
                wait_for("engine %s on generation %d" % (e, n), lambda: self.engine_generation(e) == n)
        return n

    def store_state(self, engine):
        """The engine's affinity store as its last status reported it ({} when none)."""
        return self.engines().get(engine, {}).get("affinity_store", {})

    def tun_packets(self, engine, dev=INSIDE):
        """Packets the kernel sent into an engine's TUN device (its rx, Fulcrum's view: tx)."""
        r = self.lbn(engine, "ip", "-s", "-j", "link", "show", dev)
        return int(json.loads(r.stdout)[0]["stats64"]["tx"]["packets"])

    # ------------------------------------------------------------ clients
    def connect_many(self, conns, path="/", timeout=10):
        """Opens every connection of `conns` ([(source, local port or 0), ...])
        at once from the client namespace, one request on each; returns one
        dict per connection (source, port, status, server, body, or error)."""
        spec = {"host": FACADE, "port": 80, "path": path, "timeout": timeout,
                "conns": [[s, p] for s, p in conns]}
        r = self.ns(self.ns_cli, [sys.executable, "-c", CONNECT_SCRIPT, json.dumps(spec)],
                    timeout=timeout * 3 + 20)
        return json.loads(r.stdout)

    def start_transfer(self, name, local_port, rate="10M", source=CLIENT, max_time=60):
        """A rate-limited download of /big.bin from a fixed local port."""
        out = os.path.join(self.dir, name + ".out")
        argv = ["curl", "-sS", "--max-time", str(max_time), "--limit-rate", rate,
                "--interface", source, "--local-port", str(local_port),
                "-D", out + ".headers", "-o", out, "http://%s/big.bin" % FACADE]
        self.start(name, self.ns_cli, argv)
        return out

    def start_tickers(self):
        """The push service (TICK_PORT) on every server."""
        for name, address in SERVERS.items():
            self.start("tick-" + name, self.ns_srv[name],
                       [sys.executable, "-c", TICKER_SERVER, address, str(TICK_PORT), name, str(TICK_INTERVAL)])
        for name, address in SERVERS.items():
            wait_for("push service of %s" % name, lambda: self.port_answers(self.ns_srv[name], address, TICK_PORT))

    def start_tick_clients(self, name, local_ports, source=CLIENT):
        """Connections to the push service through the façade, in the background."""
        self.start(name, self.ns_cli, [sys.executable, "-u", "-c", TICKER_CLIENT, FACADE, str(TICK_PORT), source,
                                       ",".join(str(p) for p in local_ports)])

    def ticks(self, name):
        """{local port: [(unix time, server, n), ...]} received so far, and
        {local port: "closed" / "error ..."} of connections that ended."""
        got, ended = {}, {}
        for line in self.log(name).splitlines():
            parts = line.split(" ")
            if not parts[0].isdigit() or len(parts) < 2:
                continue
            if parts[1] in ("closed", "error"):
                ended[int(parts[0])] = " ".join(parts[1:])
            elif len(parts) == 4 and parts[3].isdigit():
                got.setdefault(int(parts[0]), []).append((float(parts[1]), parts[2], int(parts[3])))
        return got, ended

    # ------------------------------------------------------------ all at once
    def up(self, config_text):
        """Namespaces, servers, Redis, the control plane with `config_text`
        committed, then both engines forwarding."""
        try:
            self.build()
            self.write_server_files()
            for name in SERVERS:
                self.start_server(name)
            self.start_tickers()
            self.start_redis()
            self.start_control()
            self.load(config_text, "multi-engine setup")
            for e in ENGINES:
                self.start_data(e)
        except BaseException:
            self.close()
            raise
        return self
