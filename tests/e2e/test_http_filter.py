"""End-to-end tests of the HTTP filter (`http-filter on`): real HTTP/1.1 from
curl and wrk in the client namespace, through fulcrum-data's TUN service
interfaces, to the nginx servers of topology.py, which log $host, the Host
header as received, the request and the connection it came on.

What they check:
  - a Host naming the façade reaches nginx as the server's address (":port"
    added when the server is not on 80), other Hosts reach it untouched;
  - the same when the rewrite changes the request's length: downloads of the
    40 MB file keep their checksum, uploads (PUT stored by nginx, 1 MB, with
    Content-Length and chunked) arrive intact, POSTs are answered, and the
    requests after them on the same keep-alive connection still work;
  - keep-alive connections of 50 requests: nginx logs 50 per connection,
    with the Host rewritten or not as sent, and the control plane's syslog
    file has exactly one "request" line per request, with the client,
    server, method, Host as sent, path and version; the engine's
    http_requests and http_hosts_rewritten counters agree, no log is lost;
  - under wrk (paced to some thousands of requests a second): as many
    request lines as nginx logged requests, no HTTP drops; at full speed,
    every request is a line or counted in engine_logs_dropped.
HttpFilterTest runs fulcrum-data as by default (TUN offloads on, TUN I/O
through io_uring); NoOffloadTest runs the rewrite tests again with --offload
off, SyscallsTest with --tun-io syscalls.

Request lines reach the syslog file in batches (every ~100 ms) and counters
with the engine's status (every second): both are waited for, with bounds.

Run as root:  FULCRUM_BUILD=build python3 -m unittest -v test_http_filter  (here)
"""
import collections
import hashlib
import json
import os
import random
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_e2e  # noqa: E402
import topology  # noqa: E402
from topology import CLIENT, FACADE, SERVERS, parse_syslog_line, wait_for  # noqa: E402

HTTP_DROPS = ("drop_http_out_of_order", "drop_http_retransmit_split")
UPLOAD_SIZE = 1 << 20


def config(port=None, extra=""):
    """test_e2e's shop application (round-robin over s1..s3) with the HTTP filter."""
    return test_e2e.config("round-robin", port=port, extra="set application shop http-filter on\n" + extra)


def server_host(name, port):
    """What a façade Host becomes for server `name` listening on `port`."""
    return SERVERS[name] if port == 80 else "%s:%d" % (SERVERS[name], port)


class RequestLogs:
    """The "request" lines of the control plane's syslog file, read
    incrementally (the file grows by tens of thousands of lines under wrk)."""

    def __init__(self, t):
        self.path = os.path.join(t.state, "fulcrum.log")
        self.offset = 0
        self.records = []  # (procid, fields)

    def read(self):
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1  # a line being written waits for the next read
            self.offset += end
            for line in data[:end].decode("utf-8", "replace").splitlines():
                parsed = parse_syslog_line(line)
                if parsed and parsed[2] == "request":
                    self.records.append((parsed[1], parsed[3]))
        return self.records

    def tagged(self, tag):
        return [f for _, f in self.read() if tag in f.get("path", "")]


class HttpFilterCase(test_e2e.E2ETest):
    """The helpers; the test classes below (one topology each) hold the tests."""

    CONFIG = config()
    DATA_ARGS = ()  # more fulcrum-data arguments

    @classmethod
    def setUpClass(cls):
        cls.t = topology.Topology()
        cls.addClassCleanup(cls.t.close)
        cls.t.data_args = list(cls.DATA_ARGS)
        cls.t.up(cls.CONFIG)
        cls.logs = RequestLogs(cls.t)
        cls.data_proc = None
        cls.lines_at_start = 0
        cls.in_step = None  # the counters at the end of the last test, when in step
        cls.upload = os.path.join(cls.t.dir, "upload.bin")
        content = random.Random(5).randbytes(UPLOAD_SIZE)
        cls.upload_sha256 = hashlib.sha256(content).hexdigest()
        with open(cls.upload, "wb") as f:
            f.write(content)

    def setUp(self):
        super().setUp()
        cls = type(self)
        # Counters start at 0 with each fulcrum-data; the request lines of
        # the syslog file are counted from then on.
        p = self.t.procs["data"][0]
        if cls.data_proc is not p:
            cls.data_proc = p
            cls.lines_at_start = len(self.logs.read())
            cls.in_step = None
        self.tag = "%s-%d" % (self._testMethodName.replace("test_", ""), random.randrange(1 << 30))
        self.settles = 0
        # The counters to compare with: those the last test ended with when
        # they were in step (nothing was sent since), else new ones once
        # what earlier tests sent is in the file and in the counters.
        self.before, cls.in_step = cls.in_step, None
        if self.before is None:
            self.settle()
            self.settles = 0
            self.before = self.counters_in_step() or self.t.counters()

    def counters_in_step(self, timeout=5):
        """The counters once the engine's last status report has seen every
        request the syslog file holds (so differences are exact): every
        request read is a line in the file or counted in engine_logs_dropped.
        Called after settle(), so that the file holds every request sent."""
        def current():
            c = self.t.counters()
            lines = len(self.logs.read()) - self.lines_at_start
            return c if c.get("http_requests", 0) == lines + c.get("engine_logs_dropped", 0) else None
        try:
            return wait_for("http_requests equal to the syslog file's request lines and the logs dropped",
                            current, timeout=timeout, interval=0.2)
        except AssertionError:
            return None

    def settle(self):
        """One more request on a new connection, waited for in the syslog
        file: the request lines of every request answered before it are
        there too (each shipment empties every loop's ring)."""
        marker = "/health?settle-%d" % random.randrange(1 << 40)
        code, status, _, body = self.t.curl(marker)
        self.assertEqual((code, status), (0, 200), body)
        self.settles += 1
        wait_for("the settle request's line", lambda: self.logs.tagged(marker[8:]), timeout=10, interval=0.1)

    # ------------------------------------------------------------ helpers
    def curl_argv(self, transfers, port=80):
        """One curl invocation (so one keep-alive connection) making every
        transfer in turn: dicts with path, out, headers, upload (-T), data
        (--data-binary @file). Each prints a RESULT line of JSON."""
        argv = ["curl"]
        for i, tr in enumerate(transfers):
            if i:
                argv.append("--next")
            argv += ["-sS", "--max-time", "60", "-o", tr.get("out", "/dev/null"), "-w", "RESULT %{json}\\n"]
            for h in tr.get("headers", ()):
                argv += ["-H", h]
            if "upload" in tr:
                argv += ["-T", tr["upload"]]
            if "data" in tr:
                argv += ["--data-binary", "@" + tr["data"]]
            argv.append("http://%s:%d%s" % (FACADE, port, tr["path"]))
        return argv

    @staticmethod
    def results(stdout):
        return [json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")]

    def curl_session(self, transfers, port=80, timeout=60):
        r = self.t.ns(self.t.ns_cli, self.curl_argv(transfers, port), check=False, timeout=timeout)
        got = self.results(r.stdout)
        self.assertEqual((r.returncode, len(got)), (0, len(transfers)), r.stderr + r.stdout[-2000:])
        return got

    def assert_one_connection(self, results):
        """curl made one connection and used it for every transfer."""
        self.assertEqual([int(r["num_connects"]) for r in results], [1] + [0] * (len(results) - 1), results)
        self.assertEqual(len({r["local_port"] for r in results}), 1, results)

    def nginx_lines(self, tag, n=None, timeout=10):
        """{server: [access-log dicts of requests whose target holds `tag`]};
        with `n`, once they are n (nginx writes its line after the response)."""
        def read():
            out = {}
            for name in SERVERS:
                lines = [a for a in self.t.access_log(name) if tag in a["request"]]
                if lines:
                    out[name] = lines
            return out
        if n is not None:
            wait_for("%d nginx log lines for %s" % (n, tag), lambda: sum(map(len, read().values())) >= n,
                     timeout=timeout, interval=0.05)
        return read()

    def wait_request_lines(self, tag, n, timeout=10):
        wait_for("%d request lines for %s in the syslog file" % (n, tag),
                 lambda: len(self.logs.tagged(tag)) >= n, timeout=timeout, interval=0.1)
        self.settle()
        return self.logs.tagged(tag)

    def assert_counters(self, requests, rewritten=None, logs_dropped=0, reordered_ok=False):
        """The counters' differences since setUp: `requests` read (and the
        settle requests), `rewritten` Hosts rewritten, no HTTP drops.
        reordered_ok: client segments past a gap may have been dropped
        (drop_http_out_of_order, see test_transfers_through_a_longer_host)."""
        after = self.counters_in_step()
        if after is None:  # the checks below show how
            after = self.t.counters()
        else:
            type(self).in_step = after
        delta = {k: after.get(k, 0) - self.before.get(k, 0) for k in after}
        # The settle requests count too (their Host is the façade's).
        self.assertEqual(delta.get("http_requests"), requests + self.settles, delta)
        if rewritten is not None:
            self.assertEqual(delta.get("http_hosts_rewritten"), rewritten + self.settles, delta)
        zero = [k for k in HTTP_DROPS + ("http_host_split", "http_host_not_rewritten")
                if not (reordered_ok and k == "drop_http_out_of_order")]
        self.assertEqual({k: delta.get(k, 0) for k in zero}, dict.fromkeys(zero, 0), delta)
        self.assertEqual(delta.get("engine_logs_dropped", 0), logs_dropped, delta)
        if reordered_ok:
            print("(http_body_gaps_skipped %d, drop_http_out_of_order %d)"
                  % (delta.get("http_body_gaps_skipped", 0), delta.get("drop_http_out_of_order", 0)),
                  file=sys.stderr, end=" ")
        return delta

    # ------------------------------------------------------------ checks
    def host_cases(self, port, cases):
        """cases: (Host header or None for curl's own, façade port, expected
        Host at nginx or None for the server's address)."""
        sent = 0
        for i, (host, facade_port, expect) in enumerate(cases):
            path = "/whoami?%s-%d" % (self.tag, i)
            headers = ["Host: " + host] if host else []
            got = self.curl_session([{"path": path, "headers": headers}], port=facade_port)
            self.assertEqual(got[0]["http_code"], 200, got)
            sent += 1
            lines = self.nginx_lines(path, 1)
            self.assertEqual(len(lines), 1, lines)
            name, [line] = next(iter(lines.items()))
            server_port = port if facade_port == 80 else 80
            want = server_host(name, server_port) if expect is None else expect
            self.assertEqual(line["http_host"], want, (host, facade_port, line))
            self.assertEqual(line["host"], want.split(":")[0].lower(), line)
            self.assertEqual(line["request"], "GET %s HTTP/1.1" % path)
            self.assertEqual(line["server_port"], str(server_port))
            [log] = self.wait_request_lines(path, 1)
            as_sent = host or (FACADE if facade_port == 80 else "%s:%d" % (FACADE, facade_port))
            self.assertEqual((log["host"], log["server"], log["method"], log["path"], log["version"]),
                             (as_sent, name, "GET", path, "HTTP/1.1"), log)
        return sent

    def transfer_sequence(self, port, host_header=None, tag=None):
        """On one keep-alive connection: two downloads of /big.bin, a 1 MB
        PUT with Content-Length and one chunked, a 1 MB POST with
        Content-Length and one chunked, a third download, a small GET. Every
        body intact, every request logged once, by nginx and by Fulcrum."""
        t, tag = self.t, tag or self.tag
        headers = ["Host: " + host_header] if host_header else []
        out = lambda i: os.path.join(t.dir, "%s-%d.out" % (tag, i))  # noqa: E731
        chunked = headers + ["Transfer-Encoding: chunked"]
        transfers = [
            {"path": "/big.bin?%s-0" % tag, "out": out(0), "headers": headers},
            {"path": "/big.bin?%s-1" % tag, "out": out(1), "headers": headers},
            {"path": "/upload/%s-put.bin" % tag, "upload": self.upload, "headers": headers},
            {"path": "/upload/%s-chunked.bin" % tag, "upload": self.upload, "headers": chunked},
            {"path": "/post?%s-4" % tag, "data": self.upload, "headers": headers},
            {"path": "/post?%s-5" % tag, "data": self.upload, "headers": chunked},
            {"path": "/big.bin?%s-6" % tag, "out": out(6), "headers": headers},
            {"path": "/index.html?%s-7" % tag, "out": out(7), "headers": headers},
        ]
        t0 = time.monotonic()
        got = self.curl_session(transfers, timeout=120)
        elapsed = time.monotonic() - t0
        try:
            self.assertEqual([r["http_code"] for r in got], [200, 200, 201, 201, 200, 200, 200, 200], got)
            self.assert_one_connection(got)
            for i in (0, 1, 6):
                with open(out(i), "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), t.big_sha256, "download %d" % i)
            # One server answered them all; what it stored is what was sent.
            lines = self.nginx_lines(tag, len(transfers))
            self.assertEqual(len(lines), 1, lines)
            name, lines = next(iter(lines.items()))
            with open(out(7)) as f:
                self.assertEqual(f.read(), "server %s\n" % name)
            for suffix in ("put", "chunked"):
                stored = os.path.join(t.dir, "srv-" + name, "www", "upload", "%s-%s.bin" % (tag, suffix))
                with open(stored, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), self.upload_sha256, suffix)
        finally:
            for i in (0, 1, 6, 7):
                if os.path.exists(out(i)):
                    os.unlink(out(i))
        # nginx: the 8 requests on one connection, in order, with the Host rewritten.
        self.assertEqual([a["request"].split()[1] for a in lines], [tr["path"] for tr in transfers], lines)
        self.assertEqual(len({a["connection"] for a in lines}), 1, lines)
        self.assertEqual([int(a["connection_requests"]) for a in lines], list(range(1, 9)), lines)
        self.assertEqual({a["http_host"] for a in lines}, {server_host(name, port)}, lines)
        self.assertEqual([a["transfer_encoding"] for a in lines],
                         ["-", "-", "-", "chunked", "-", "chunked", "-", "-"])
        # Fulcrum: one request line each, the Host as the client sent it.
        logs = self.wait_request_lines(tag, len(transfers))
        methods = ["GET", "GET", "PUT", "PUT", "POST", "POST", "GET", "GET"]
        self.assertEqual(sorted((f["method"], f["path"]) for f in logs),
                         sorted((m, tr["path"]) for m, tr in zip(methods, transfers)), logs)
        self.assertEqual({(f["host"], f["server"], f["client"]) for f in logs},
                         {(host_header or FACADE, name, "%s:%d" % (CLIENT, got[0]["local_port"]))}, logs)
        print("\n  %d MB down, 4 MB up on one connection in %.1f s" % (3 * topology.BIG_SIZE >> 20, elapsed),
              file=sys.stderr, end=" ")
        return len(transfers)


class HttpFilterTest(HttpFilterCase):
    """fulcrum-data as by default: TUN offloads on (GSO super-packets of up
    to 64 KiB reach the filter), TUN I/O through io_uring."""

    def test_queues_use_io_uring(self):
        """The engine really runs its queues through io_uring (the default):
        it says so at start and never fell back to system calls."""
        log = self.t.log("data")
        if "io_uring refused" in log:
            self.skipTest("this kernel refuses io_uring (the engine fell back to system calls, as it should)")
        self.assertIn("packet loops (tun, io_uring)", log)
        self.assertNotIn("io_uring failed", log)

    def test_host_names_the_server(self):
        """Servers on 80: the façade Host (also with ":80", and the façade
        of a second application on port 8081) becomes the server's address;
        other names, other ports and longer addresses stay as sent."""
        t = self.t
        t.load(config(extra="set application web2 service-set web facade %s port 8081 http-filter on\n"
                            "set application web2 server s2 address %s port 80\n" % (FACADE, SERVERS["s2"])))
        cases = [(None, 80, None), (FACADE + ":80", 80, None), ("example.test", 80, "example.test"),
                 (FACADE + ":8080", 80, FACADE + ":8080"), (FACADE + "0", 80, FACADE + "0"),
                 (None, 8081, SERVERS["s2"]), (FACADE, 8081, SERVERS["s2"]),
                 (FACADE + ":80", 8081, FACADE + ":80")]
        sent = self.host_cases(80, cases)
        self.assert_counters(sent, rewritten=4)

    def test_host_names_the_server_with_its_port(self):
        """Servers on 8080 behind façade port 80: the façade Host becomes
        "address:8080" (5 or 2 bytes longer); other Hosts stay."""
        self.t.load(config(port=8080))
        cases = [(None, 80, None), (FACADE + ":80", 80, None), ("example.test", 80, "example.test"),
                 ("example.test:80", 80, "example.test:80")]
        sent = self.host_cases(8080, cases)
        self.assert_counters(sent, rewritten=2)

    def test_transfers_through_a_longer_host(self):
        """Servers on 8080: every request on the connection grows by 5 bytes.

        With two packet loops a client segment sometimes reaches the
        filter after a later one (seen with --loops 2, never with --loops
        1; without the filter the servers' TcpExtTCPOFOQueue counts it).
        A gap inside an upload's body is skipped (http_body_gaps_skipped);
        one reaching into a request head makes the filter drop what lies
        past it (drop_http_out_of_order) and the client sends it again:
        slower, but intact, which is what is checked here."""
        self.t.load(config(port=8080))
        sent = self.transfer_sequence(8080)
        self.assert_counters(sent, rewritten=sent, reordered_ok=True)

    def test_transfers_through_a_shorter_host(self):
        """Servers on 80, the client sends "Host: façade:80": every request
        shrinks by 3 bytes."""
        self.t.load(config())
        sent = self.transfer_sequence(80, host_header=FACADE + ":80")
        self.assert_counters(sent, rewritten=sent, reordered_ok=True)

    def test_keep_alive_connections_log_every_request(self):
        """4 connections at once, 50 requests each, servers on 8080. On each
        connection the Host is in turn curl's own (rewritten, 5 bytes
        longer), "façade:80" (rewritten, 2 longer) and another name (kept),
        so the shift grows by different steps: nginx logs 50 requests per
        connection with the right Host, the syslog file has exactly one line
        per request, the counters agree."""
        t = self.t
        t.load(config(port=8080))
        connections, per = 4, 50
        hosts = [None, FACADE + ":80", "example.test"]  # request i sends hosts[i % 3]
        path = lambda c, i: "/index.html?%s-c%d-r%d" % (self.tag, c, i)  # noqa: E731
        for c in range(connections):
            transfers = [{"path": path(c, i), "headers": ["Host: " + hosts[i % 3]] if hosts[i % 3] else []}
                         for i in range(per)]
            t.start("ka%d" % c, t.ns_cli, self.curl_argv(transfers))
        results = {}
        for c in range(connections):
            p, _ = t.procs["ka%d" % c]
            try:
                rc = p.wait(60)
            finally:
                t.stop("ka%d" % c)
            results[c] = self.results(t.log("ka%d" % c))
            self.assertEqual((rc, len(results[c])), (0, per), t.log("ka%d" % c)[-2000:])
            self.assertEqual({r["http_code"] for r in results[c]}, {200})
            self.assert_one_connection(results[c])
        sent = connections * per
        rewritten = connections * sum(1 for i in range(per) if i % 3 != 2)
        # nginx: one connection per curl, its 50 requests in order on it.
        lines = self.nginx_lines(self.tag, sent)
        self.assertEqual(sum(map(len, lines.values())), sent)
        server_of = {}  # path -> server that answered it
        for name, nl in lines.items():
            by_connection = collections.defaultdict(list)
            for a in nl:
                by_connection[a["connection"]].append(a)
                target = a["request"].split()[1]
                server_of[target] = name
                i = int(target.rsplit("-r", 1)[1])
                want = "example.test" if i % 3 == 2 else server_host(name, 8080)
                self.assertEqual((a["http_host"], a["status"]), (want, "200"), a)
            for al in by_connection.values():
                c = re.search(r"-c(\d+)-", al[0]["request"]).group(1)
                self.assertEqual([a["request"] for a in al],
                                 ["GET %s HTTP/1.1" % path(int(c), i) for i in range(per)], al)
                self.assertEqual([int(a["connection_requests"]) for a in al], list(range(1, per + 1)), al)
        self.assertEqual(sum(len({a["connection"] for a in nl}) for nl in lines.values()), connections, lines)
        # Fulcrum: exactly one line per request, with what the client sent.
        logs = self.wait_request_lines(self.tag, sent)
        self.assertEqual(len(logs), sent)
        self.assertEqual(sorted((f["client"], f["path"]) for f in logs),
                         sorted(("%s:%d" % (CLIENT, results[c][0]["local_port"]), path(c, i))
                                for c in range(connections) for i in range(per)))
        for f in logs:
            name = server_of[f["path"]]
            i = int(f["path"].rsplit("-r", 1)[1])
            self.assertEqual(
                (f["application"], f["facade"], f["server"], f["server-address"], f["method"], f["host"],
                 f["version"]),
                ("shop", FACADE + ":80", name, server_host(name, 8080), "GET", hosts[i % 3] or FACADE,
                 "HTTP/1.1"), f)
        self.assert_counters(sent, rewritten=rewritten)

    def wrk_run(self, connections, seconds, script=None):
        """wrk on keep-alive connections to a tagged path, then the wait
        until every request nginx logged for it is a request line or a
        dropped log. Returns (wrk's count, nginx's, request lines, dropped)."""
        t = self.t
        argv = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--timeout", "2s"]
        if script:
            path = os.path.join(t.dir, "wrk-%s.lua" % self.tag)
            with open(path, "w") as f:
                f.write(script)
            argv += ["-s", path]
        r = t.ns(t.ns_cli, argv + ["http://%s/index.html?%s" % (FACADE, self.tag)], timeout=seconds + 30)
        out = r.stdout
        wrk_requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        self.assertGreater(wrk_requests, 1000, out)

        def counts():
            nginx = sum(map(len, self.nginx_lines(self.tag).values()))
            dropped = t.counters().get("engine_logs_dropped", 0) - self.before.get("engine_logs_dropped", 0)
            return wrk_requests, nginx, len(self.logs.tagged(self.tag)), dropped
        # Both logs trail the run (nginx writes its line after the
        # response, Fulcrum's lines come in batches and the counters every
        # second): wait until they agree, then once more after settle().
        try:
            def agree():
                n = counts()
                return n[1] >= n[0] and n[1] == n[2] + n[3]
            wait_for("request lines and dropped logs adding up to nginx's count", agree,
                     timeout=15, interval=0.2)
            self.settle()
        finally:
            got = counts()
            print("\n  wrk: %d requests (%.0f/s), nginx logged %d, syslog file %d, logs dropped %d"
                  % (got[0], got[0] / seconds, got[1], got[2], got[3]), file=sys.stderr, end=" ")
        # wrk does not count the requests it leaves unanswered when time is up.
        self.assertTrue(got[0] <= got[1] <= got[0] + connections, got)
        self.assertEqual(got[1], got[2] + got[3], got)
        lines = self.nginx_lines(self.tag)
        self.assertEqual({a["http_host"] for nl in lines.values() for a in nl},
                         {server_host(name, 8080) for name in lines})
        self.assertEqual({(f["host"], f["method"], f["application"]) for f in self.logs.tagged(self.tag)},
                         {(FACADE, "GET", "shop")})
        return got

    def test_wrk_request_lines_match_nginx(self):
        """3 s of wrk on 8 keep-alive connections, each pausing 1 ms between
        requests (some thousands a second): the syslog file has as many
        request lines as nginx logged requests, none dropped."""
        self.t.load(config(port=8080))
        _, nginx, lines, dropped = self.wrk_run(8, 3, script="function delay()\n  return 1\nend\n")
        self.assertEqual((lines, dropped), (nginx, 0))
        self.assert_counters(nginx, rewritten=nginx)

    def test_wrk_full_speed_every_request_logged_or_counted(self):
        """2 s of wrk as fast as it goes. Each loop's request-log ring is
        bounded and emptied every 100 ms (4096 entries when this was written:
        about 40,000 requests a second per loop), so some logs may be
        dropped: every request nginx logged is a line in the syslog file or
        counted in engine_logs_dropped, exactly (none is logged twice)."""
        self.t.load(config(port=8080))
        _, nginx, lines, dropped = self.wrk_run(8, 2)
        self.assert_counters(nginx, rewritten=nginx, logs_dropped=dropped)


class SameTransfers:
    """HttpFilterTest's transfer and request-log tests, for the classes below
    that run them with other fulcrum-data arguments (not a TestCase itself,
    so they are not run twice)."""

    test_host_names_the_server_with_its_port = HttpFilterTest.test_host_names_the_server_with_its_port
    test_transfers_through_a_longer_host = HttpFilterTest.test_transfers_through_a_longer_host
    test_transfers_through_a_shorter_host = HttpFilterTest.test_transfers_through_a_shorter_host
    test_keep_alive_connections_log_every_request = (
        HttpFilterTest.test_keep_alive_connections_log_every_request)


class NoOffloadTest(SameTransfers, HttpFilterCase):
    """fulcrum-data --offload off: one TCP segment per packet, so requests
    and bodies cross the filter in 1448-byte pieces."""

    DATA_ARGS = ("--offload", "off")


class SyscallsTest(SameTransfers, HttpFilterCase):
    """fulcrum-data --tun-io syscalls: the TUN queues' bursts with one
    read()/write() per packet instead of io_uring (the default), the same
    transfers and request logs as HttpFilterTest."""

    DATA_ARGS = ("--tun-io", "syscalls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
