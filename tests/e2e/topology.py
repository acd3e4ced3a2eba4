"""End-to-end topology for Fulcrum: real traffic through the TUN service
interfaces of a real fulcrum-data, in network namespaces that this module
creates and removes (stdlib only).

    <p>-cli  198.18.0.1/24 (+ .2-.9 as extra client addresses), default via 198.18.0.254
        | veth: eth0 <-> cli0
    <p>-lb   198.18.0.254/24 on cli0, façade 198.18.0.10/32 on lo,
             198.18.1.254/32 on srv1..srv3 with host routes to the servers,
             fulcrum-control (127.0.0.1:7080) and fulcrum-data (TUN devices
             fs-web-in / fs-web-out), policy routing into the TUN devices
        | veth: srvN <-> eth0
    <p>-sN   198.18.1.1N/24, default via 198.18.1.254 (onlink), nginx on :80
             and :8080 serving index.html ("server sN"), /health, /whoami,
             a 40 MB file of deterministic content (/big.bin), PUT into
             /upload/ and POST to /post; every request in its access.log

Every name carries a per-run prefix `fe<pid>-<n>-`, so parallel runs do not
collide; namespaces of runs whose process is gone are removed at start.
Every wait is bounded and polls for readiness; close() removes every process
and namespace, also after a failure (the test classes call it from
tearDownClass / addClassCleanup, and SIGTERM is turned into an exception).

Only addresses of 198.18.0.0/15 and loopback are used; nothing leaves the
namespaces: the client and the servers each sit at the end of a veth pair
whose other end is in the LB namespace.

LB routing (build() and route_into_fulcrum(); beyond README's recipe, two
things were needed, see the comments there):
    ip rule 100: iif cli0 to 198.18.0.10 -> table 100: 198.18.0.10 dev fs-web-in
    ip rule 150: lookup local             (moved from 0, behind the façade rule)
    ip rule 200: iif srvN -> table 101: default dev fs-web-out
    proxy_arp on cli0 (the façade is in the client's /24)
    ip_forward=1; rp_filter=0 and accept_local=1 as the README says (with
    these rules, strict rp_filter and accept_local=0 also worked)
"""
import atexit
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from fulcrum_testlib import BUILD, binary, read_text, run_cli, stop_process, wait_for  # noqa: E402,F401


CLIENT = "198.18.0.1"
CLIENT_EXTRA = ["198.18.0.%d" % i for i in range(2, 10)]
CLIENT_GW = "198.18.0.254"
FACADE = "198.18.0.10"
SERVER_GW = "198.18.1.254"
SERVERS = {"s1": "198.18.1.11", "s2": "198.18.1.12", "s3": "198.18.1.13"}
INSIDE, OUTSIDE = "fs-web-in", "fs-web-out"
CONTROL_PORT = 7080
# The control plane's heartbeat (the brief: short, so that lost peers show
# quickly). FULCRUM_E2E_HEARTBEAT_MS overrides it, for diagnosing only.
HEARTBEAT_MS = int(os.environ.get("FULCRUM_E2E_HEARTBEAT_MS", "200"))
BIG_SIZE = 40 << 20
# (lbN, rtr and ctl: the namespaces of multi_topology.py, same scheme)
PREFIX_RE = re.compile(r"^fe(\d+)-(\d+)-(cli|lb\d*|rtr|ctl|s\d+)$")
DIR_RE = re.compile(r"^fulcrum-e2e-(\d+)-(\d+)-")

# Main-table routing decides where packets written by Fulcrum go; these
# tables divert traffic into the TUN devices.
TABLE_FACADE, TABLE_REPLIES = 100, 101
# Rule order: façade diversion, then the local table, then server replies.
PRIO_FACADE, PRIO_LOCAL, PRIO_REPLIES = 100, 150, 200

# The fields of a line of nginx's access.log (log_format fulcrum below).
ACCESS_FIELDS = ("host", "http_host", "request", "connection", "connection_requests", "remote",
                 "server_port", "status", "request_length", "transfer_encoding")
# A line of the syslog file: <PRI>1 TIME HOST APP-NAME PROCID MSGID SD [MSG]
# (control-plane/syslog/syslog_format.h); SD is "-" or [fulcrum@32473 k="v" ...].
_SD_VALUE = r'"(?:[^"\\]|\\.)*"'
SYSLOG_RE = re.compile(r"^<\d+>1 \S+ \S+ (\S+) (\S+) (\S+) (?:-|\[fulcrum@32473((?: [^=\s\]]+=%s)*)\])"
                       % _SD_VALUE)
SD_PARAM_RE = re.compile(r"([^=\s\]]+)=(%s)" % _SD_VALUE)


def parse_syslog_line(line):
    """(app, procid, msgid, {field: value}) of one syslog file line, or None."""
    m = SYSLOG_RE.match(line)
    if not m:
        return None
    fields = {k: re.sub(r"\\(.)", r"\1", v[1:-1]) for k, v in SD_PARAM_RE.findall(m.group(4) or "")}
    return m.group(1), m.group(2), m.group(3), fields


def big_content():
    """The deterministic 40 MB body of /big.bin."""
    return random.Random(20240601).randbytes(BIG_SIZE)


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # so that every cleanup runs


def install_sigterm_handler():
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _run(argv, check=True, timeout=30, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def list_namespaces():
    r = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def remove_namespace(ns):
    """Kills every process inside `ns`, then deletes it (its veths go with it)."""
    for _ in range(3):
        r = _run(["ip", "netns", "pids", ns], check=False)
        pids = [int(p) for p in r.stdout.split() if p.isdigit()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    _run(["ip", "netns", "del", ns], check=False)


_live = {}             # (pid, n) -> Topology, of this process, not yet closed
_counter = itertools.count(1)


@atexit.register
def _close_all():
    """Also when the test process ends by an exception that unittest does
    not catch (KeyboardInterrupt, SIGTERM turned into one)."""
    for t in list(_live.values()):
        t.close()


def clean_leftovers(keep_dirs=None):
    """Removes namespaces (with every process in them) and temp directories
    of earlier runs (same prefix scheme) whose test process is gone, and
    those of this process that no live topology owns. Directories stay when
    FULCRUM_KEEP is set (unless keep_dirs says otherwise)."""
    if keep_dirs is None:
        keep_dirs = bool(os.environ.get("FULCRUM_KEEP"))
    for ns in list_namespaces():
        m = PREFIX_RE.match(ns)
        if not m:
            continue
        pid, n = int(m.group(1)), int(m.group(2))
        if pid == os.getpid():
            if (pid, n) not in _live:
                remove_namespace(ns)
        elif not _pid_alive(pid):
            remove_namespace(ns)
    tmp = tempfile.gettempdir()
    for name in ([] if keep_dirs else os.listdir(tmp)):
        m = DIR_RE.match(name)
        if not m:
            continue
        pid, n = int(m.group(1)), int(m.group(2))
        if (pid == os.getpid() and (pid, n) not in _live) or (pid != os.getpid() and not _pid_alive(pid)):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    # One line per request: what the HTTP filter's Host rewrite gave nginx
    # ($host without the port, $http_host as sent), the request, and the
    # connection it came on (test_http_filter.py reads it: ACCESS_FIELDS).
    log_format fulcrum '$host|$http_host|$request|$connection|$connection_requests|'
                       '$remote_addr:$remote_port|$server_port|$status|$request_length|'
                       '$http_transfer_encoding';
    access_log {dir}/access.log fulcrum;
    sendfile on;
    keepalive_timeout 30;
    default_type application/octet-stream;
    types {{ text/html html; }}
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    server {{
        listen {address}:80;
        listen {address}:8080;
        root {dir}/www;
        add_header X-Server {name} always;
        add_header X-Server-Port $server_port always;
        # PUT stores the body (its checksum is compared), POST is answered
        # with 200 after the body is read and dropped.
        location /upload/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 16m;
        }}
        location = /post {{
            client_max_body_size 16m;
            default_type text/plain;
            return 200 "posted\\n";
        }}
        location = /whoami {{
            default_type text/plain;
            return 200 "{name} $server_addr:$server_port client $remote_addr:$remote_port\\n";
        }}
    }}
}}
"""


class Topology:
    """The namespaces, the daemons in them, and helpers to drive them."""

    def __init__(self, loops=2, capacity=None):
        install_sigterm_handler()
        clean_leftovers()
        self.n = next(_counter)
        self.prefix = "fe%d-%d-" % (os.getpid(), self.n)
        self.ns_cli, self.ns_lb = self.prefix + "cli", self.prefix + "lb"
        self.ns_srv = {name: self.prefix + name for name in SERVERS}
        self.loops, self.capacity = loops, capacity
        self.data_args = []  # more fulcrum-data arguments (benchmarks)
        self.dir = tempfile.mkdtemp(prefix="fulcrum-e2e-%d-%d-" % (os.getpid(), self.n))
        self.state = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.state, "mgmt.sock")
        self.procs = {}      # name -> (Popen, log path)
        self.namespaces = []
        self.big_sha256 = None
        _live[(os.getpid(), self.n)] = self

    # ------------------------------------------------------------ plumbing
    def ns(self, ns, argv, check=True, timeout=30, **kw):
        return _run(["ip", "netns", "exec", ns] + list(argv), check=check, timeout=timeout, **kw)

    def lb(self, *argv, check=True):
        return self.ns(self.ns_lb, argv, check=check)

    def start(self, name, ns, argv):
        log = os.path.join(self.dir, name + ".log")
        out = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        out.close()
        self.procs[name] = (p, log)
        return p

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        if name not in self.procs:
            return None
        p, _ = self.procs.pop(name)
        return stop_process(p, sig, timeout)

    def running(self, name):
        return name in self.procs and self.procs[name][0].poll() is None

    def log(self, name):
        return read_text(os.path.join(self.dir, name + ".log"))

    def syslog(self):
        return read_text(os.path.join(self.state, "fulcrum.log"))

    def access_log(self, server):
        """nginx's access.log of a server, one dict per request (ACCESS_FIELDS)."""
        lines = read_text(os.path.join(self.dir, "srv-" + server, "access.log")).splitlines()
        return [dict(zip(ACCESS_FIELDS, line.split("|"))) for line in lines
                if line.count("|") == len(ACCESS_FIELDS) - 1]

    # ------------------------------------------------------------ build / tear down
    def _add_ns(self, ns):
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        self.ns(ns, ["ip", "link", "set", "lo", "up"])

    def build(self):
        """Namespaces, veths, addresses, routes and sysctls (everything but
        the routes that need the TUN devices, see route_into_fulcrum())."""
        for ns in [self.ns_cli, self.ns_lb] + list(self.ns_srv.values()):
            self._add_ns(ns)
        lb = self.ns_lb
        for key, value in (("net.ipv4.ip_forward", 1), ("net.ipv4.conf.all.rp_filter", 0),
                           ("net.ipv4.conf.default.rp_filter", 0), ("net.ipv4.conf.all.accept_local", 1),
                           ("net.ipv4.conf.default.accept_local", 1)):
            self.lb("sysctl", "-qw", "%s=%d" % (key, value))
        # client <-> LB
        self.lb("ip", "link", "add", "cli0", "type", "veth", "peer", "name", "eth0", "netns", self.ns_cli)
        self.lb("ip", "addr", "add", CLIENT_GW + "/24", "dev", "cli0")
        self.lb("sysctl", "-qw", "net.ipv4.conf.cli0.rp_filter=0")
        # The façade lies in the client's /24, so the client ARPs for it. Rule
        # 100 routes it into the TUN device, so it no longer counts as local
        # for ARP on cli0: the LB answers for it by proxy ARP.
        self.lb("sysctl", "-qw", "net.ipv4.conf.cli0.proxy_arp=1")
        self.lb("ip", "link", "set", "cli0", "up")
        self.ns(self.ns_cli, ["ip", "addr", "add", CLIENT + "/24", "dev", "eth0"])
        for a in CLIENT_EXTRA:
            self.ns(self.ns_cli, ["ip", "addr", "add", a + "/24", "dev", "eth0"])
        self.ns(self.ns_cli, ["ip", "link", "set", "eth0", "up"])
        self.ns(self.ns_cli, ["ip", "route", "add", "default", "via", CLIENT_GW])
        # The façade is local to the LB (what Fulcrum passes unchanged ends here).
        self.lb("ip", "addr", "add", FACADE + "/32", "dev", "lo")
        # LB <-> servers
        for i, (name, address) in enumerate(sorted(SERVERS.items()), 1):
            dev, ns = "srv%d" % i, self.ns_srv[name]
            self.lb("ip", "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.lb("ip", "addr", "add", SERVER_GW + "/32", "dev", dev)
            self.lb("sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % dev)
            self.lb("ip", "link", "set", dev, "up")
            self.lb("ip", "route", "add", address + "/32", "dev", dev)
            self.ns(ns, ["ip", "addr", "add", address + "/24", "dev", "eth0"])
            self.ns(ns, ["ip", "link", "set", "eth0", "up"])
            self.ns(ns, ["ip", "route", "add", "default", "via", SERVER_GW, "dev", "eth0", "onlink"])
        # Policy routing: client traffic to the façade goes into the inside
        # device; what the servers send goes into the outside device.
        # Rule order matters (found by trying, kernel 6.18):
        #  - the façade is a local address, and the kernel's rule 0 (lookup
        #    local) would deliver the client's packets to the LB's own stack
        #    before any other rule is read (curl: connection refused); so the
        #    local table moves behind the façade rule (100 -> 150);
        #  - the server rules must come after the local table: otherwise a
        #    reply to the LB's own connections (the monitor's checks from
        #    198.18.1.254) is matched by early demux to its local socket and
        #    then routed for forwarding into fs-web-out, and the kernel drops
        #    forwarded packets that carry a socket: every check times out.
        self.lb("ip", "rule", "add", "iif", "cli0", "to", FACADE, "lookup", str(TABLE_FACADE),
                "priority", str(PRIO_FACADE))
        self.lb("ip", "rule", "add", "lookup", "local", "priority", str(PRIO_LOCAL))
        self.lb("ip", "rule", "del", "lookup", "local", "priority", "0")
        for i in range(1, len(SERVERS) + 1):
            self.lb("ip", "rule", "add", "iif", "srv%d" % i, "lookup", str(TABLE_REPLIES),
                    "priority", str(PRIO_REPLIES))

    def route_into_fulcrum(self):
        """Once fulcrum-data made its TUN devices: rp_filter off on them and
        the routes of the diversion tables (they go with the devices, so
        this runs again after every start of fulcrum-data)."""
        for dev in (INSIDE, OUTSIDE):
            self.lb("sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % dev)
        self.lb("ip", "route", "replace", FACADE + "/32", "dev", INSIDE, "table", str(TABLE_FACADE))
        self.lb("ip", "route", "replace", "default", "dev", OUTSIDE, "table", str(TABLE_REPLIES))

    def close(self):
        for name in list(self.procs):
            try:
                self.stop(name, signal.SIGKILL, 5)
            except Exception:
                pass
        for ns in self.namespaces:
            remove_namespace(ns)
        self.namespaces = []
        _live.pop((os.getpid(), self.n), None)
        if os.environ.get("FULCRUM_KEEP"):
            print("kept", self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self):
        """Namespaces and processes of this topology that still exist."""
        left = [ns for ns in list_namespaces() if ns.startswith(self.prefix)]
        procs = [n for n, (p, _) in self.procs.items() if p.poll() is None]
        return left + procs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ servers
    def write_server_files(self):
        content = big_content()
        self.big_sha256 = hashlib.sha256(content).hexdigest()
        big = os.path.join(self.dir, "big.bin")
        with open(big, "wb") as f:
            f.write(content)
        for name, address in SERVERS.items():
            d = os.path.join(self.dir, "srv-" + name)
            os.makedirs(os.path.join(d, "www"), exist_ok=True)
            with open(os.path.join(d, "www", "index.html"), "w") as f:
                f.write("server %s\n" % name)
            with open(os.path.join(d, "www", "health"), "w") as f:
                f.write("ok\n")
            os.link(big, os.path.join(d, "www", "big.bin"))
            with open(os.path.join(d, "nginx.conf"), "w") as f:
                f.write(NGINX_CONF.format(dir=d, address=address, name=name))

    def port_answers(self, ns, host, port):
        r = self.ns(ns, ["python3", "-c",
                         "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)",
                         host, str(port)], check=False, timeout=10)
        return r.returncode == 0

    def start_server(self, name):
        d = os.path.join(self.dir, "srv-" + name)
        self.start("http-" + name, self.ns_srv[name],
                   [shutil.which("nginx") or "nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"),
                    "-e", os.path.join(d, "error.log")])
        address = SERVERS[name]
        wait_for("nginx of %s" % name, lambda: self.port_answers(self.ns_srv[name], address, 80)
                 and self.port_answers(self.ns_srv[name], address, 8080))

    def stop_server(self, name):
        self.stop("http-" + name, signal.SIGTERM)
        wait_for("%s stopped" % name, lambda: not self.port_answers(self.ns_srv[name], SERVERS[name], 80))

    # ------------------------------------------------------------ daemons
    def start_control(self):
        argv = [binary("fulcrum-control"), "--state-dir", self.state,
                "--listen", "127.0.0.1:%d" % CONTROL_PORT, "--heartbeat-ms", str(HEARTBEAT_MS)]
        self.start("control", self.ns_lb, argv)
        wait_for("the control plane's sockets",
                 lambda: os.path.exists(self.socket) and self.port_answers(self.ns_lb, "127.0.0.1", CONTROL_PORT)
                 and self.cli("show", "engines", check=False).returncode == 0)

    def start_data(self, timeout=15):
        argv = [binary("fulcrum-data"), "--control", "127.0.0.1:%d" % CONTROL_PORT,
                "--engine-id", "lb1", "--loops", str(self.loops)]
        if self.capacity:
            argv += ["--capacity", str(self.capacity)]
        argv += list(self.data_args)
        self.start("data", self.ns_lb, argv)
        self.wait_for_devices(timeout)
        self.route_into_fulcrum()
        generation = self.generation()
        wait_for("engine lb1 on generation %d" % generation,
                 lambda: int(self.engines().get("lb1", {}).get("config_generation", 0)) == generation,
                 timeout=timeout)

    def device_up(self, dev):
        r = self.lb("ip", "-o", "link", "show", dev, check=False)
        flags = re.search(r"<([^>]*)>", r.stdout)
        return r.returncode == 0 and flags is not None and "UP" in flags.group(1).split(",")

    def wait_for_devices(self, timeout=15):
        def ready():
            if not self.running("data"):
                raise AssertionError("fulcrum-data exited: %s" % self.log("data")[-2000:])
            return self.device_up(INSIDE) and self.device_up(OUTSIDE)
        wait_for("TUN devices %s and %s up" % (INSIDE, OUTSIDE), ready, timeout=timeout)

    # ------------------------------------------------------------ CLI
    def cli(self, *args, check=True, json_out=False, timeout=30):
        return run_cli(self.socket, *args, check=check, json_out=json_out, timeout=timeout)

    def load(self, text, comment="e2e"):
        path = os.path.join(self.dir, "load-%d.conf" % random.randrange(1 << 30))
        with open(path, "w") as f:
            f.write(text)
        self.cli("load", path)
        return self.commit(comment)

    def commit(self, comment="e2e"):
        """Commits the candidate and waits until the engine (if running) applied it."""
        n = int(self.cli("commit", "-m", comment, json_out=True)["commit_number"])
        if self.running("data"):
            wait_for("engine on generation %d" % n,
                     lambda: int(self.engines().get("lb1", {}).get("config_generation", 0)) == n)
        return n

    def generation(self):
        commits = self.cli("show", "commits", json_out=True).get("commits", [])
        return max([int(c["number"]) for c in commits] or [0])

    def servers(self):
        return {s["server"]: s for s in self.cli("show", "servers", json_out=True).get("servers", [])}

    def engines(self):
        return {e["engine_id"]: e for e in self.cli("show", "engines", json_out=True).get("engines", [])}

    def sessions(self, application=None):
        args = ["show", "sessions"] + ([application] if application else [])
        return self.cli(*args, json_out=True).get("sessions", [])

    def session_count(self):
        """Table occupancy of engine lb1 (from its last status report)."""
        return int(self.engines()["lb1"]["sessions"])

    def statistics(self):
        return self.cli("show", "statistics", json_out=True)["statistics"]

    def counters(self):
        return {c["name"]: int(c["value"]) for c in self.statistics().get("totals", [])}

    # ------------------------------------------------------------ client
    def curl(self, path="/", max_time=5, source=None, extra=()):
        """One request from the client namespace to the façade. Returns
        (curl's exit code, HTTP status, headers dict (lower-case names), body text)."""
        fd, out = tempfile.mkstemp(dir=self.dir, prefix="curl-")
        os.close(fd)
        try:
            argv = ["curl", "-sS", "--max-time", str(max_time), "-D", out + ".h", "-o", out]
            if source:
                argv += ["--interface", source]
            argv += list(extra) + ["http://%s%s" % (FACADE, path)]
            r = self.ns(self.ns_cli, argv, check=False, timeout=max_time + 10)
            status, headers = 0, {}
            if os.path.exists(out + ".h"):
                with open(out + ".h", "rb") as f:
                    lines = f.read().decode("latin-1").split("\r\n")
                if lines and lines[0].startswith("HTTP/"):
                    status = int(lines[0].split()[1])
                    for line in lines[1:]:
                        k, _, v = line.partition(":")
                        if k:
                            headers[k.strip().lower()] = v.strip()
            with open(out, "rb") as f:
                body = f.read().decode("utf-8", "replace")
            return r.returncode, status, headers, body + r.stderr
        finally:
            for p in (out, out + ".h"):
                if os.path.exists(p):
                    os.unlink(p)

    def served_by(self, path="/", **kw):
        """Which server answered a request (None when it failed)."""
        code, status, headers, _ = self.curl(path, **kw)
        return headers.get("x-server") if code == 0 and status == 200 else None

    def start_download(self, name, rate="8M", path="/big.bin", max_time=60):
        """A long, rate-limited download in the background; returns the
        output path (headers at output + ".headers")."""
        out = os.path.join(self.dir, name + ".out")
        argv = ["curl", "-sS", "--max-time", str(max_time), "--limit-rate", rate,
                "-D", out + ".headers", "-o", out, "http://%s%s" % (FACADE, path)]
        self.start(name, self.ns_cli, argv)
        return out

    def download_server(self, out, timeout=5):
        """The X-Server header of a download in progress (bounded wait)."""
        def header():
            with open(out + ".headers") as f:
                m = re.search(r"(?im)^x-server:\s*(\S+)", f.read())
            return m and m.group(1)
        return wait_for("response headers of " + out, header, timeout=timeout)

    def finish_download(self, name, out, timeout=60):
        p, _ = self.procs[name]
        try:
            rc = p.wait(timeout)
        finally:
            self.stop(name, signal.SIGKILL)
        digest = hashlib.sha256()
        if os.path.exists(out):
            with open(out, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        return rc, digest.hexdigest(), os.path.getsize(out) if os.path.exists(out) else 0

    # ------------------------------------------------------------ all at once
    def up(self, config_text):
        """Builds the namespaces, starts the servers and the control plane,
        commits `config_text`, starts fulcrum-data and waits until it
        forwards (its TUN devices are up and routed)."""
        try:
            self.build()
            self.write_server_files()
            for name in SERVERS:
                self.start_server(name)
            self.start_control()
            self.load(config_text, "e2e setup")
            self.start_data()
        except BaseException:
            self.close()
            raise
        return self
