"""Control plane, engine channel and CLI, with real processes: fulcrum-control,
fulcrum-data engines, the fulcrum CLI and python's http.server as backends,
all inside a network namespace the test makes (see fulcrum_env.py)."""
import json
import os
import random
import re
import shlex
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import fulcrum_env
from fulcrum_env import Env, wait_for

BASE = """\
set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm least-connections
set application shop server s1 address 198.18.1.11 port 80
set application shop server s2 address 198.18.1.12 port 80
set application shop server s3 address 198.18.1.13 port 80
"""


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def read_frame(sock, timeout=5.0):
    sock.settimeout(timeout)
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


# An engine that says hello as lb1 and then, every 100 ms, reports a status
# whose affinity store is the JSON object in the file argv[2]. Protobuf is
# encoded by hand (no python protobuf needed); replies are read and dropped.
STORE_ENGINE = r"""
import json, socket, struct, sys, time

FIELDS = ["kind", "address", "state", "last_error", "requests", "answered", "failed", "timeouts",
          "down_decisions", "cache_hits", "cache_misses", "reconnects", "latency_avg_us",
          "latency_max_us", "session_sync_writes", "session_sync_recoveries"]

def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value

def send(sock, message):
    sock.sendall(struct.pack(">I", len(message)) + message)

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
send(sock, field(1, field(1, 1) + field(2, "lb1") + field(3, "test") + field(4, 1)))
sock.setblocking(False)
while True:
    try:
        if sock.recv(65536) == b"":
            break
    except BlockingIOError:
        pass
    with open(sys.argv[2]) as f:
        store = json.load(f)
    encoded = b"".join(field(i + 1, store[name]) for i, name in enumerate(FIELDS)
                       if store.get(name) not in (None, "", 0))
    status = field(1, int(time.time() * 1000)) + field(2, 1) + field(10, encoded)
    sock.setblocking(True)
    send(sock, field(6, status))
    sock.setblocking(False)
    time.sleep(0.1)
"""


class ControlPlaneTest(unittest.TestCase):
    def setUp(self):
        self.env = Env()
        self.addCleanup(self.env.close)
        self.env.start_control()

    def load(self, text, comment="test"):
        path = os.path.join(self.env.dir, "load-%d.conf" % random.randrange(1 << 30))
        with open(path, "w") as f:
            f.write(text)
        self.env.cli("load", path)
        return self.commit(comment)

    def commit(self, comment="test"):
        r = self.env.cli("commit", "-m", comment, json_out=True)
        return int(r["commit_number"])

    def servers(self):
        return {(s["application"], s["server"]): s for s in self.env.cli("show", "servers", json_out=True)["servers"]}

    def engines(self):
        return {e["engine_id"]: e for e in self.env.cli("show", "engines", json_out=True)["engines"]}

    # ---------------------------------------------------------------- configuration
    def test_configuration_cycle(self):
        env = self.env
        for line in BASE.strip().splitlines():
            env.cli(*shlex.split(line))
        cand = env.cli("show", "configuration", "--candidate").stdout
        self.assertIn("set application shop server s2 address 198.18.1.12", cand)
        self.assertEqual(env.cli("show", "configuration").stdout.strip(), "")
        diff = env.cli("compare").stdout
        self.assertIn("+ set application shop server s1 address 198.18.1.11", diff)
        self.assertEqual(self.commit("first"), 1)
        self.assertIn("198.18.1.13", env.cli("show", "configuration").stdout)
        self.assertIn("no changes", env.cli("compare").stdout)

        env.cli("delete", "application", "shop", "server", "s3")
        env.cli("set", "application", "shop", "session-timeout", "600")
        diff = env.cli("compare").stdout
        self.assertRegex(diff, r"(?m)^- set application shop server s3")
        self.assertIn("+ set application shop session-timeout 600", diff)
        self.assertEqual(self.commit("second"), 2)

        commits = env.cli("show", "commits", json_out=True)["commits"]
        self.assertEqual([int(c["number"]) for c in commits], [2, 1])
        self.assertEqual(commits[0]["comment"], "second")
        self.assertTrue(commits[0]["user"])
        table = env.cli("show", "commits").stdout
        self.assertRegex(table, r"(?m)^COMMIT\s+TIME\s+USER\s+COMMENT")

        env.cli("rollback", "1")
        self.assertIn("+ set application shop server s3", env.cli("compare").stdout)
        self.assertEqual(self.commit("back"), 3)
        self.assertIn("198.18.1.13", env.cli("show", "configuration").stdout)
        self.assertIn("commit", self.env.syslog())

    def test_configuration_errors_change_nothing(self):
        env = self.env
        self.load(BASE)
        before = env.cli("show", "configuration", "--candidate").stdout
        cases = [
            (["set", "aplication", "shop", "port", "81"], 1, "'aplication'"),
            (["set", "application", "shop", "facade", "198.18.0.300"], 1, "'facade'"),
            (["set", "application", "shop", "port", "70000"], 1, "'port'"),
            (["delete", "application", "shop", "server", "s9"], 1, "s9"),
            (["rollback", "99"], 1, "99"),
            (["rollback", "x"], 2, "'x'"),
            (["shwo", "servers"], 2, "'shwo'"),
            (["load", "/nonexistent/file.conf"], 2, "/nonexistent/file.conf"),
            (["request", "server", "drain", "shop", "s9"], 1, "s9"),
            (["request", "server", "drain", "nosuch", "s1"], 1, "nosuch"),
            (["show", "sessions", "nosuch"], 1, "nosuch"),
        ]
        for argv, code, word in cases:
            r = env.cli(*argv, check=False)
            self.assertEqual(r.returncode, code, "%s: %s" % (argv, r.stderr))
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, "%s: %r" % (argv, r.stderr))
            self.assertTrue(lines[0].startswith("fulcrum: "), lines[0])
            self.assertIn(word, lines[0])
            self.assertEqual(r.stdout, "")
        self.assertEqual(env.cli("show", "configuration", "--candidate").stdout, before)
        # A candidate that is incomplete may be edited, but not committed.
        env.cli("set", "application", "cart", "server", "c1", "address", "198.18.1.21")
        r = env.cli("commit", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^fulcrum: line \d+: 'cart'")
        self.assertEqual(len(env.cli("show", "commits", json_out=True)["commits"]), 1)

    def test_cli_without_control_plane(self):
        self.env.stop("control")
        r = self.env.cli("show", "servers", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertIn("cannot reach the control plane at " + self.env.socket, r.stderr)
        self.assertIn("fulcrum-control", r.stderr)

    # ---------------------------------------------------------------- monitor
    def test_monitor_marks_servers_down_and_up(self):
        env = self.env
        for a in env.server_addresses:
            env.start_http(a)
        self.load(BASE + "set application shop monitor type http path /health expect 200 "
                         "interval 1 timeout 1 rise 2 fall 2\n")
        wait_for("all servers up", lambda: all(s["state"] == "up" for s in self.servers().values()))
        env.stop("http-198.18.1.12-80")
        t0 = time.monotonic()
        wait_for("s2 down", lambda: self.servers()[("shop", "s2")]["state"] == "down", timeout=8)
        # fall 2 at interval 1 s: two failed checks, so about 2 s, never instantly.
        self.assertGreater(time.monotonic() - t0, 0.9)
        self.assertEqual(self.servers()[("shop", "s1")]["state"], "up")
        self.assertTrue(self.servers()[("shop", "s2")]["last_check"])
        wait_for("syslog line for s2 down",
                 lambda: re.search(r"server-state .*server shop/s2 is down", env.syslog()))
        env.start_http("198.18.1.12")
        wait_for("s2 up again", lambda: self.servers()[("shop", "s2")]["state"] == "up", timeout=8)
        table = env.cli("show", "servers").stdout
        self.assertRegex(table, r"(?m)^APPLICATION\s+SERVER\s+ADDRESS\s+STATE")
        self.assertRegex(table, r"(?m)^shop\s+s2\s+198\.18\.1\.12:80\s+up")

    def test_tcp_and_icmp_monitors(self):
        env = self.env
        env.start_http("198.18.1.11")
        self.load(BASE + "set application shop monitor type tcp interval 1 timeout 1 rise 1 fall 1\n")
        wait_for("tcp: s1 up, s2 and s3 down", lambda: [
            self.servers()[("shop", s)]["state"] for s in ("s1", "s2", "s3")] == ["up", "down", "down"])
        env.cli("set", "application", "shop", "monitor", "type", "icmp")
        self.commit("icmp")
        # Every address is on the namespace's interface, so every one answers pings.
        wait_for("icmp: all up", lambda: all(s["state"] == "up" for s in self.servers().values()))

    # ---------------------------------------------------------------- engines
    def test_engines_get_configuration_and_report(self):
        env = self.env
        self.load(BASE)
        env.start_engine("e1")
        env.start_engine("e2")
        wait_for("two engines on generation 1", lambda: sorted(
            (i, int(e["config_generation"])) for i, e in self.engines().items()) == [("e1", 1), ("e2", 1)])
        self.assertIn("e1", env.cli("show", "engines").stdout)
        env.cli("set", "application", "shop", "session-timeout", "300")
        self.commit("two")
        wait_for("engines on generation 2", lambda: all(
            int(e["config_generation"]) == 2 for e in self.engines().values()))
        wait_for("engine event in syslog", lambda: "engine e2" in env.syslog())
        # Events of the engines themselves travel in log batches to the same file.
        wait_for("e1's own event in syslog", lambda: re.search(
            r"fulcrum-data e1 config - configuration generation 2 applied", env.syslog()))
        stats = env.cli("show", "statistics", json_out=True)["statistics"]
        control = {c["name"]: int(c["value"]) for c in stats["control"]}
        self.assertEqual(control["engines_connected"], 2)
        self.assertEqual(env.cli("show", "sessions", json_out=True).get("sessions", []), [])
        self.assertEqual(int(env.cli("clear", "sessions", json_out=True).get("cleared", 0)), 0)

    def test_engine_survives_control_plane_restart(self):
        env = self.env
        self.load(BASE)
        env.start_engine("e1")
        wait_for("engine connected", lambda: "e1" in self.engines())
        env.stop("control", signal.SIGKILL)
        wait_for("engine notices", lambda: "lost the control plane" in env.log("engine-e1"))
        self.assertTrue(env.running("engine-e1"))
        env.start_control()
        wait_for("engine back", lambda: int(self.engines().get("e1", {}).get("config_generation", 0)) == 1)

    def test_engine_restart_and_duplicate_id(self):
        env = self.env
        self.load(BASE)
        env.start_engine("e1")
        wait_for("engine connected", lambda: "e1" in self.engines())
        env.stop("engine-e1", signal.SIGKILL)
        env.start_engine("e1")  # before the old connection timed out
        wait_for("one e1 on generation 1",
                 lambda: list(self.engines()) == ["e1"] and int(self.engines()["e1"]["config_generation"]) == 1)

    def test_two_engines_with_one_id_do_not_flap(self):
        env = self.env
        self.load(BASE)
        env.start_engine("e1")
        wait_for("first e1 connected", lambda: "e1" in self.engines())
        argv = [fulcrum_env.binary("fulcrum-data"), "--control", "127.0.0.1:%d" % env.control_port,
                "--engine-id", "e1", "--io", "none"]
        env.start("engine-e1-twin", argv)
        wait_for("the twin refused", lambda: "engine id e1 is already connected" in env.log("control"))
        wait_for("the twin says why", lambda: "refused this engine" in env.log("engine-e1-twin"))
        first = self.engines()["e1"]["peer"]
        # The twin backs off to its longest delay and is refused again; the
        # first engine is never knocked off.
        wait_for("a second refusal", lambda: env.log("control").count("refused engine from") >= 2,
                 timeout=12)
        self.assertEqual(self.engines()["e1"]["peer"], first)
        self.assertNotIn("reconnected from", env.log("control"))

    def test_stop_with_a_session_request_in_flight(self):
        env = self.env
        self.load(BASE)
        # An engine that says hello and then never answers a session dump.
        script = (
            "import socket,struct,sys,time\n"
            "s=socket.create_connection(('127.0.0.1',%d),2)\n"
            "h=b'\\x08\\x01\\x12\\x04mute'\n"
            "s.sendall(struct.pack('>I',len(h)+2)+b'\\x0a'+bytes([len(h)])+h)\n"
            "buf=b''\n"
            "end=time.time()+20\n"
            "while time.time()<end:\n"
            "  c=s.recv(65536)\n"
            "  if not c: break\n"
            "  buf+=c\n"
            "  while len(buf)>=4 and len(buf)>=4+struct.unpack('>I',buf[:4])[0]:\n"
            "    n=struct.unpack('>I',buf[:4])[0]; f=buf[4:4+n]; buf=buf[4+n:]\n"
            "    if f[:1]==b'\\x42': print('dump request', flush=True)\n" % env.control_port)
        env.start("mute", ["python3", "-c", script])
        wait_for("mute engine connected", lambda: "mute" in self.engines())
        cli = subprocess.Popen([fulcrum_env.binary("fulcrum"), "--socket", env.socket, "show", "sessions"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for("the dump request reached the mute engine", lambda: "dump request" in env.log("mute"))
            p, _ = env.procs["control"]
            os.killpg(p.pid, signal.SIGTERM)
            rc = p.wait(10)
        finally:
            cli.kill()
            cli.wait(5)
        self.assertEqual(rc, 0, env.log("control")[-2000:])
        self.assertIn("stopping", env.log("control"))

    def test_drain_persists(self):
        env = self.env
        self.load(BASE)
        env.cli("request", "server", "drain", "shop", "s1")
        self.assertTrue(self.servers()[("shop", "s1")]["draining"])
        self.assertRegex(env.cli("show", "servers").stdout, r"(?m)^shop\s+s1\s+\S+\s+unmonitored,draining")
        env.stop("control")
        env.start_control()
        self.assertTrue(self.servers()[("shop", "s1")]["draining"])
        env.cli("request", "server", "undrain", "shop", "s1")
        self.assertFalse(self.servers()[("shop", "s1")]["draining"])
        self.assertIn("drain", env.syslog())

    # ---------------------------------------------------------------- affinity store
    def test_engine_affinity_store_status(self):
        """A scripted engine reports its affinity store going down and up:
        show engines, show affinity-store, --json, statistics and one syslog
        event per change."""
        env = self.env
        self.load(BASE)
        state = os.path.join(env.dir, "store.json")

        def report(**fields):
            with open(state + ".tmp", "w") as f:
                json.dump(fields, f)
            os.rename(state + ".tmp", state)  # the engine never reads half a file

        store = dict(kind="redis", address="redis://198.18.5.2:6379/0", state="up", last_error="",
                     requests=100, answered=95, failed=2, timeouts=3, down_decisions=0,
                     cache_hits=400, cache_misses=100, reconnects=0, latency_avg_us=250,
                     latency_max_us=4000, session_sync_writes=60, session_sync_recoveries=1)
        report(**store)
        script = os.path.join(env.dir, "store_engine.py")
        with open(script, "w") as f:
            f.write(STORE_ENGINE)
        env.start("store-engine", ["python3", script, str(env.control_port), state])

        def engine_store():
            return self.engines().get("lb1", {}).get("affinity_store", {})
        wait_for("lb1 reports its store up", lambda: engine_store().get("state") == "up")
        reported = engine_store()
        self.assertEqual(reported["address"], "redis://198.18.5.2:6379/0")
        self.assertEqual(int(reported["timeouts"]), 3)
        self.assertEqual(int(reported["latency_max_us"]), 4000)
        self.assertRegex(env.cli("show", "engines").stdout, r"(?m)^lb1\s.*\sredis up\s")

        store.update(state="down", last_error="connect: Connection refused", down_decisions=7,
                     reconnects=2)
        report(**store)
        down = "engine lb1: affinity store redis://198.18.5.2:6379/0 is down: connect: Connection refused"
        wait_for("the down event", lambda: down in env.syslog())
        self.assertRegex(env.cli("show", "engines").stdout, r"(?m)^lb1\s.*\sredis down\s")
        text = env.cli("show", "affinity-store").stdout
        self.assertRegex(text, r"(?m)^lb1\s+redis://198\.18\.5\.2:6379/0\s+down\s+connect: Connection refused$")
        self.assertRegex(text, r"(?m)^COUNTER\s+lb1$")
        self.assertRegex(text, r"(?m)^down_decisions\s+7$")
        totals = {c["name"]: int(c["value"])
                  for c in env.cli("show", "statistics", json_out=True)["statistics"]["totals"]}
        self.assertEqual(totals["store_down_decisions"], 7)
        self.assertEqual(totals["store_timeouts"], 3)
        self.assertEqual(totals["store_failed"], 2)
        self.assertEqual(totals["store_engines_down"], 1)
        self.assertRegex(env.cli("show", "statistics").stdout, r"(?m)^store_down_decisions\s+7$")

        store.update(state="connecting")
        report(**store)
        wait_for("lb1 connecting", lambda: engine_store().get("state") == "connecting")
        store.update(state="up")
        report(**store)
        up = "engine lb1: affinity store redis://198.18.5.2:6379/0 is up"
        wait_for("the up event", lambda: up in env.syslog())
        # One event per change, however many status reports said the same.
        log = env.syslog()
        self.assertEqual(log.count(down), 1, log[-3000:])
        self.assertEqual(log.count(up), 1, log[-3000:])

    # ---------------------------------------------------------------- bad input on sockets
    def engine_socket(self, payload_chunks, expect_reply=False):
        """Sends raw bytes to the engine port from inside the namespace; returns
        the first reply frame's bytes (hex) when asked."""
        script = (
            "import socket,struct,sys,binascii\n"
            "s=socket.create_connection(('127.0.0.1',%d),2)\n"
            "for c in sys.argv[1:]: s.sendall(binascii.unhexlify(c))\n"
            "if %r:\n"
            "  s.settimeout(3); h=s.recv(4); n=struct.unpack('>I',h)[0]; b=b''\n"
            "  while len(b)<n: b+=s.recv(n-len(b))\n"
            "  print(binascii.hexlify(b).decode())\n"
            "s.close()\n" % (self.env.control_port, expect_reply))
        r = self.env.ns(["python3", "-c", script] + [c.hex() for c in payload_chunks])
        return bytes.fromhex(r.stdout.strip()) if expect_reply else None

    def test_garbage_oversized_and_truncated_frames(self):
        env = self.env
        self.load(BASE)
        env.start_engine("e1")
        wait_for("engine connected", lambda: "e1" in self.engines())
        self.engine_socket([frame(b"\xff\xff\xff\xff")])                 # does not parse
        self.engine_socket([struct.pack(">I", 1 << 30)])                 # oversized
        self.engine_socket([struct.pack(">I", 100) + b"half a frame"])   # truncated
        self.engine_socket([b"GET / HTTP/1.1\r\n\r\n"])                  # not our protocol at all
        wait_for("log lines naming the peer", lambda: len(re.findall(
            r"(engine peer 127\.0\.0\.1:\d+ sent a frame that does not parse|"
            r"peer 127\.0\.0\.1:\d+ sent a frame of \d+ bytes)", env.log("control"))) >= 3)
        # The management socket too.
        for junk in (frame(b"\xff\xfe"), struct.pack(">I", 1 << 31), b"\x00\x00"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(env.socket)
            s.sendall(junk)
            s.close()
        self.assertTrue(env.running("control"))
        self.assertIn("e1", self.engines())  # the good engine was never disturbed
        self.assertEqual(len(self.servers()), 3)

    def test_protocol_version_mismatch(self):
        # EngineMessage{hello: Hello{protocol_version: 99, engine_id: "old"}}
        hello = b"\x08\x63\x12\x03old"
        reply = self.engine_socket([frame(b"\x0a" + bytes([len(hello)]) + hello)], expect_reply=True)
        self.assertIn(b"protocol version 99 not supported", reply)
        self.assertIn(b"speaks version 1", reply)
        # MgmtRequest{protocol_version: 99, show_engines: {}}
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.env.socket)
        s.sendall(frame(b"\x08\x63\xa2\x01\x00"))
        body = read_frame(s)
        s.close()
        self.assertIn(b"protocol version 99 not supported", body)

    # ---------------------------------------------------------------- crash safety
    def test_kill_during_commits_leaves_a_whole_commit(self):
        env = self.env
        self.load(BASE)
        for round_ in range(4):
            stop = threading.Event()

            def committer():
                n = 0
                while not stop.is_set():
                    n += 1
                    env.cli("set", "application", "shop", "session-timeout", str(100 + n), check=False)
                    env.cli("commit", "-m", "round %d n %d" % (round_, n), check=False)

            t = threading.Thread(target=committer)
            t.start()
            time.sleep(random.uniform(0.2, 0.8))  # let some commits happen, then kill mid-stream
            env.stop("control", signal.SIGKILL)
            stop.set()
            t.join(30)
            env.start_control()
            # show commits lists the newest 100: they must be consecutive, the
            # newest being the active one.
            commits = env.cli("show", "commits", json_out=True)["commits"]
            numbers = sorted(int(c["number"]) for c in commits)
            self.assertEqual(numbers, list(range(numbers[0], numbers[-1] + 1)))
            self.assertTrue(numbers[0] == 1 or len(numbers) == 100, numbers[:3])
            active = env.cli("show", "configuration").stdout
            self.assertIn("set application shop", active)
            self.assertIn("198.18.1.13", active)

    def test_syslog_reopens_on_sighup(self):
        env = self.env
        self.load(BASE)
        path = os.path.join(env.dir, "state", "fulcrum.log")
        os.rename(path, path + ".1")
        p, _ = env.procs["control"]
        os.killpg(p.pid, signal.SIGHUP)
        wait_for("reopened", lambda: "reopening" in env.log("control"))
        env.cli("set", "application", "shop", "session-timeout", "700")
        self.commit("after rotation")
        wait_for("new file has the commit", lambda: os.path.exists(path) and "after rotation" in env.syslog())
        with open(path + ".1") as f:
            self.assertNotIn("after rotation", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
