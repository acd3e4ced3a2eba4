"""End-to-end tests of Fulcrum: real TCP traffic from a client namespace,
through fulcrum-data's TUN service interfaces in an LB namespace, to nginx
servers in three server namespaces (topology.py draws it). The real daemons,
the real CLI, curl and wrk; every wait bounded; everything removed at the
end, also when a check fails.

Run as root:  FULCRUM_BUILD=build python3 -m unittest -v test_e2e  (in this folder)
FULCRUM_KEEP=1 keeps the temp directory (daemon logs, syslog file).
"""
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topology  # noqa: E402
from topology import CLIENT, CLIENT_EXTRA, SERVERS, Topology, wait_for  # noqa: E402


def config(algorithm="round-robin", port=None, weights=None, extra=""):
    """The shop application on the web service set, servers s1..s3."""
    lines = [
        "set service-set web inside-interface fs-web-in outside-interface fs-web-out",
        "set application shop service-set web facade %s port 80 algorithm %s" % (topology.FACADE, algorithm),
    ]
    for name, address in sorted(SERVERS.items()):
        line = "set application shop server %s address %s" % (name, address)
        if port:
            line += " port %d" % port
        if weights:
            line += " weight %d" % weights[name]
        lines.append(line)
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


class E2ETest(unittest.TestCase):
    """One topology per class (building it takes about a second); every test
    loads its own configuration and starts from running daemons and servers."""

    CONFIG = config()

    @classmethod
    def setUpClass(cls):
        cls.t = Topology()
        cls.addClassCleanup(cls.t.close)
        cls.t.up(cls.CONFIG)

    def setUp(self):
        t = self.t
        for name in SERVERS:
            if not t.running("http-" + name):
                t.start_server(name)
        if not t.running("control"):
            t.start_control()
        if not t.running("data"):
            t.start_data()
        for name, s in t.servers().items():
            if s.get("draining"):
                t.cli("request", "server", "undrain", "shop", name)

    def spread(self, n=30, path="/", source=None):
        """Which server answered each of n sequential requests (None: failed)."""
        return collections.Counter(self.t.served_by(path, source=source) for _ in range(n))


class DistributionTest(E2ETest):
    def test_round_robin(self):
        self.t.load(config("round-robin"))
        self.assertEqual(self.spread(), {"s1": 10, "s2": 10, "s3": 10})

    def test_least_connections(self):
        self.t.load(config("least-connections"))
        got = self.spread()
        self.assertNotIn(None, got)
        self.assertEqual(sorted(k for k in got), ["s1", "s2", "s3"], got)

    def test_weighted_round_robin(self):
        self.t.load(config("weighted-round-robin", weights={"s1": 3, "s2": 1, "s3": 1}))
        got = self.spread()
        self.assertNotIn(None, got)
        self.assertTrue(16 <= got["s1"] <= 20 and 4 <= got["s2"] <= 8 and 4 <= got["s3"] <= 8, got)

    def test_source_hash(self):
        self.t.load(config("source-hash"))
        got = self.spread()
        self.assertEqual(len(got), 1, got)
        self.assertNotIn(None, got)
        # Other client addresses: each stays on one server; together they use several.
        chosen = set()
        for source in CLIENT_EXTRA:
            per = self.spread(3, source=source)
            self.assertEqual(len(per), 1, (source, per))
            self.assertNotIn(None, per)
            chosen |= set(per)
        self.assertGreater(len(chosen), 1)

    def test_persistence_source_address(self):
        self.t.load(config("round-robin", extra="set application shop persistence source-address timeout 60\n"))
        got = self.spread()
        self.assertEqual(len(got), 1, got)
        self.assertNotIn(None, got)
        other = self.spread(6, source=CLIENT_EXTRA[0])
        self.assertEqual(len(other), 1, other)
        self.assertNotIn(None, other)

    def test_port_translation_and_client_address(self):
        """Servers answer on 8080 while the façade is port 80, and see the
        client's own address as the source (no source NAT)."""
        self.t.load(config("round-robin", port=8080))
        seen = collections.Counter()
        for _ in range(6):
            code, status, headers, body = self.t.curl("/whoami")
            self.assertEqual((code, status), (0, 200), body)
            m = re.match(r"(s\d) (\S+):(\d+) client (\S+):\d+", body)
            self.assertTrue(m, body)
            name, address, port, client = m.groups()
            self.assertEqual((address, port, client), (SERVERS[name], "8080", CLIENT), body)
            self.assertEqual(headers.get("x-server-port"), "8080")
            seen[name] += 1
        self.assertEqual(seen, {"s1": 2, "s2": 2, "s3": 2})
        sessions = self.t.sessions("shop")
        # The session table shows the translation too (time-wait entries).
        self.assertTrue(any(s["session"]["server_address"].endswith(":8080") for s in sessions), sessions)


class ContinuityTest(E2ETest):
    def test_long_transfer_across_commit_and_control_restart(self):
        t = self.t
        t.load(config("round-robin"))
        out = t.start_download("dl-commit", rate="8M")
        server = t.download_server(out)
        wait_for("download under way", lambda: os.path.getsize(out) > (1 << 20))
        sessions = t.sessions("shop")
        self.assertTrue(any(s["session"]["server"] == server and s["session"]["state"] == "established"
                            for s in sessions), sessions)
        # A changed configuration: other algorithm, other weights, other timeout.
        t.cli("set", "application", "shop", "algorithm", "weighted-round-robin")
        t.cli("set", "application", "shop", "server", server, "weight", "5")
        t.cli("set", "application", "shop", "session-timeout", "600")
        generation = t.commit("changed during a transfer")
        self.assertTrue(t.running("dl-commit"), "the transfer ended before the commit was applied")
        size_at_commit = os.path.getsize(out)
        # kill -9 of the control plane, then a new one.
        lost = t.log("data").count("lost the control plane")
        t.stop("control", signal.SIGKILL)
        wait_for("engine notices", lambda: t.log("data").count("lost the control plane") > lost, timeout=10)
        t.start_control()
        wait_for("engine back on generation %d" % generation,
                 lambda: int(t.engines().get("lb1", {}).get("config_generation", 0)) == generation)
        self.assertTrue(t.running("dl-commit"), "the transfer ended before the control plane was back")
        # The new control plane sees the engine's session, on the same server.
        sessions = t.sessions("shop")
        self.assertTrue(any(s["session"]["server"] == server and s["session"]["state"] == "established"
                            for s in sessions), sessions)
        wait_for("transfer goes on", lambda: os.path.getsize(out) > size_at_commit + (2 << 20))
        rc, digest, size = t.finish_download("dl-commit", out)
        self.assertEqual(rc, 0, t.log("dl-commit"))
        self.assertEqual(size, topology.BIG_SIZE)
        self.assertEqual(digest, t.big_sha256)
        # New connections follow the new configuration.
        self.assertNotIn(None, self.spread(7))

    def test_drain_during_long_transfer(self):
        t = self.t
        t.load(config("round-robin"))
        out = t.start_download("dl-drain", rate="8M")
        server = t.download_server(out)
        wait_for("download under way", lambda: os.path.getsize(out) > (1 << 20))
        t.cli("request", "server", "drain", "shop", server)
        self.assertTrue(t.servers()[server]["draining"])
        # The update reaches the engine over the channel right after the
        # control plane changed its state; nothing shows the engine's view.
        time.sleep(0.3)
        got = self.spread(15)
        self.assertTrue(t.running("dl-drain"), "the transfer ended before the requests")
        self.assertNotIn(server, got)
        self.assertNotIn(None, got)
        rc, digest, size = t.finish_download("dl-drain", out)
        self.assertEqual(rc, 0, t.log("dl-drain"))
        self.assertEqual((size, digest), (topology.BIG_SIZE, t.big_sha256))
        t.cli("request", "server", "undrain", "shop", server)
        time.sleep(0.3)
        self.assertIn(server, self.spread(6))


class MonitorTest(E2ETest):
    CONFIG = config("round-robin", extra="set application shop monitor type http path /health "
                                         "interval 1 timeout 1 rise 2 fall 2\n")

    def test_monitor_takes_a_stopped_server_out_and_back(self):
        t = self.t
        t.load(self.CONFIG)
        wait_for("all servers up", lambda: all(s["state"] == "up" for s in t.servers().values()))
        t.stop_server("s2")
        wait_for("s2 down", lambda: t.servers()["s2"]["state"] == "down", timeout=10)
        got = self.spread()
        self.assertNotIn(None, got)  # no failed request
        self.assertEqual(set(got), {"s1", "s3"}, got)  # none from the stopped server
        t.start_server("s2")
        wait_for("s2 up", lambda: t.servers()["s2"]["state"] == "up", timeout=10)
        got = self.spread(9)
        self.assertNotIn(None, got)
        self.assertEqual(set(got), {"s1", "s2", "s3"}, got)


class LoadTest(E2ETest):
    def test_bounded_load_then_sessions_go(self):
        t = self.t
        t.load(config("round-robin"))
        r = t.ns(t.ns_cli, ["wrk", "-t2", "-c20", "-d8s", "--timeout", "2s", "-H", "Connection: close",
                            "http://%s/" % topology.FACADE], timeout=40)
        out = r.stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertGreater(requests, 1000, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        t0 = time.monotonic()
        peak = wait_for("engine lb1's status", lambda: str(t.session_count()), timeout=5)
        drops = {k: v for k, v in t.counters().items() if v and (k.startswith("drop_") or "error" in k)}
        print("\n  wrk: %d requests, %s sessions after it, drops/errors %s" % (requests, peak, drops),
              file=sys.stderr, end=" ")
        # Closed connections leave after the 10 s time-wait / closed timeouts.
        wait_for("session table near empty", lambda: t.session_count() <= 10, timeout=20, interval=0.5)
        print("emptied after %.1f s" % (time.monotonic() - t0), file=sys.stderr)
        self.assertNotIn(None, self.spread(3))

    def test_engine_restart(self):
        t = self.t
        t.load(config("round-robin"))
        self.assertNotIn(None, self.spread(3))
        t.stop("data", signal.SIGKILL)
        wait_for("engine gone", lambda: "lb1" not in t.engines(), timeout=10)
        code, _, _, _ = t.curl(max_time=1)
        self.assertNotEqual(code, 0)  # nothing forwards while it is away
        t0 = time.monotonic()
        t.start_data()
        wait_for("requests served again", lambda: t.served_by(max_time=1), timeout=10)
        print("\n  serving %.1f s after the restart" % (time.monotonic() - t0), file=sys.stderr)
        self.assertEqual(self.spread(), {"s1": 10, "s2": 10, "s3": 10})

    def test_engine_stays_connected(self):
        """With the control plane's heartbeat at 200 ms, an idle engine must
        not be dropped as silent and reconnect."""
        t = self.t
        before = t.log("control").count("disconnected")
        time.sleep(3)
        self.assertEqual(t.log("control").count("disconnected"), before, t.log("control")[-600:])


SCRATCH = """\
import os, signal, sys, time, unittest
sys.path.insert(0, %(dir)r)
from topology import Topology
import test_e2e

class Scratch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology()
        cls.addClassCleanup(cls.t.close)
        cls.t.up(test_e2e.config())
        t = cls.t
        print("UP", t.prefix, t.dir, flush=True)
        t.start_download("dl", rate="1M")

    def test_fails(self):
        if os.environ.get("SCRATCH_MODE") == "wait":
            time.sleep(60)
        self.assertEqual(self.t.served_by(), "no such server")
"""


class CleanupTest(unittest.TestCase):
    """A failing check, SIGTERM, and a kill -9 of a test run: nothing stays."""

    def scratch(self, mode):
        d = tempfile.mkdtemp(prefix="fulcrum-e2e-scratch-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        path = os.path.join(d, "test_scratch.py")
        with open(path, "w") as f:
            f.write(SCRATCH % {"dir": os.path.dirname(os.path.abspath(__file__))})
        env = dict(os.environ, SCRATCH_MODE=mode, PYTHONPATH=d)
        env.pop("FULCRUM_KEEP", None)
        return subprocess.Popen([sys.executable, "-m", "unittest", "test_scratch"], cwd=d, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def up_line(self, p):
        line = p.stdout.readline()
        m = re.match(r"UP (\S+) (\S+)", line)
        self.assertTrue(m, line + p.stdout.read() if p.poll() is not None else line)
        return m.groups()

    def assert_nothing_left(self, prefix, directory):
        self.assertEqual([ns for ns in topology.list_namespaces() if ns.startswith(prefix)], [])
        left = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if directory.encode() in f.read():
                            left.append(pid)
                except OSError:
                    pass
        self.assertEqual(left, [])
        self.assertFalse(os.path.exists(directory))

    def test_failing_check_leaves_nothing(self):
        p = self.scratch("fail")
        prefix, directory = self.up_line(p)
        out = p.communicate(timeout=60)[0]
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AssertionError", out)
        self.assert_nothing_left(prefix, directory)

    def test_sigterm_leaves_nothing(self):
        p = self.scratch("wait")
        prefix, directory = self.up_line(p)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        self.assert_nothing_left(prefix, directory)

    def test_kill_leftovers_are_removed_by_the_next_run(self):
        p = self.scratch("wait")
        prefix, directory = self.up_line(p)
        p.kill()
        p.communicate(timeout=30)
        self.assertTrue([ns for ns in topology.list_namespaces() if ns.startswith(prefix)])
        topology.clean_leftovers(keep_dirs=False)
        self.assert_nothing_left(prefix, directory)


if __name__ == "__main__":
    unittest.main(verbosity=2)
