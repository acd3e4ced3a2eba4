"""A disposable Fulcrum installation for integration tests: real daemons, the
real CLI and real HTTP servers, inside a network namespace that the test
creates (so server addresses can be 198.18.x.x without touching the host's
network), all removed at the end, also when a check fails.

Every wait is bounded and waits on readiness (a socket that answers, a line
in a log), never on a bare sleep.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from fulcrum_testlib import BUILD, binary, read_text, run_cli, stop_process, wait_for  # noqa: E402,F401





class Env:
    """One namespace with an interface carrying the server addresses,
    a state directory, and the processes started in them."""

    def __init__(self, server_addresses=("198.18.1.11", "198.18.1.12", "198.18.1.13")):
        self.dir = tempfile.mkdtemp(prefix="fulcrum-it-")
        self.netns = "fit-%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.procs = {}
        self.server_addresses = list(server_addresses)
        self.socket = os.path.join(self.dir, "state", "mgmt.sock")
        self.control_port = 7080
        try:
            self._run(["ip", "netns", "add", self.netns])
            self.ns(["ip", "link", "set", "lo", "up"])
            # A veth pair inside the namespace carries the server addresses (this
            # kernel may have no dummy interfaces); nothing leaves the namespace.
            self.ns(["ip", "link", "add", "fit0", "type", "veth", "peer", "name", "fit1"])
            for a in self.server_addresses:
                self.ns(["ip", "addr", "add", a + "/24", "dev", "fit0"])
            self.ns(["ip", "link", "set", "fit0", "up"])
            self.ns(["ip", "link", "set", "fit1", "up"])
        except Exception:
            self.close()
            raise

    # -------------------------------------------------------------- plumbing
    def _run(self, argv, **kw):
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30, **kw)

    def ns(self, argv, **kw):
        return self._run(["ip", "netns", "exec", self.netns] + argv, **kw)

    def start(self, name, argv, log=None):
        log = log or os.path.join(self.dir, name + ".log")
        out = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.netns] + argv, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.procs[name] = (p, log)
        return p

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        p, _ = self.procs.pop(name)
        return stop_process(p, sig, timeout)

    def running(self, name):
        return name in self.procs and self.procs[name][0].poll() is None

    def log(self, name):
        return read_text(self.procs[name][1] if name in self.procs else
                         os.path.join(self.dir, name + ".log"))

    def close(self):
        for name in list(self.procs):
            try:
                self.stop(name, signal.SIGKILL, 5)
            except Exception:
                pass
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)
        if os.environ.get("FULCRUM_KEEP"):
            print("kept", self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------- daemons
    def port_answers(self, host, port):
        r = subprocess.run(["ip", "netns", "exec", self.netns, "python3", "-c",
                            "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)",
                            host, str(port)], capture_output=True, timeout=10)
        return r.returncode == 0

    def start_control(self, *extra, heartbeat_ms=200):
        argv = [binary("fulcrum-control"), "--state-dir", os.path.join(self.dir, "state"),
                "--listen", "127.0.0.1:%d" % self.control_port, "--heartbeat-ms", str(heartbeat_ms)]
        self.start("control", argv + list(extra))
        wait_for("the control plane's sockets",
                 lambda: os.path.exists(self.socket) and self.port_answers("127.0.0.1", self.control_port))

    def start_engine(self, engine_id, *extra):
        argv = [binary("fulcrum-data"), "--control", "127.0.0.1:%d" % self.control_port,
                "--engine-id", engine_id, "--capacity", "10000"]
        self.start("engine-" + engine_id, argv + list(extra))

    def start_http(self, address, port=80, body=None):
        """A real HTTP server (python's http.server) bound to address:port; its
        index.html says which server it is."""
        root = os.path.join(self.dir, "www-%s-%d" % (address, port))
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(body or "server %s\n" % address)
        with open(os.path.join(root, "health"), "w") as f:
            f.write("ok\n")
        name = "http-%s-%d" % (address, port)
        self.start(name, ["python3", "-m", "http.server", str(port), "--bind", address,
                          "--directory", root])
        wait_for("http server %s:%d" % (address, port), lambda: self.port_answers(address, port))
        return name

    # -------------------------------------------------------------- CLI
    def cli(self, *args, check=True, json_out=False, timeout=30):
        return run_cli(self.socket, *args, check=check, json_out=json_out, timeout=timeout)

    def syslog(self):
        return read_text(os.path.join(self.dir, "state", "fulcrum.log"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
