#!/usr/bin/python3
"""Socket clients of the http-filter capture (make-captures.sh): the request
shapes curl does not make. Each prints one line and exits 0, or exits non-zero
with the reason.

usage: http-filter-clients.py KIND SOURCE_ADDRESS FACADE PORT
  pipelined   4 GET requests written with one send() (one TCP segment), with
              Host values "FACADE", "FACADE:PORT" (written "host:" without a
              space), "shop.example" and "FACADE:8080"; the last says
              Connection: close. Reads the 4 responses.
  split       two GETs on one connection, each written with two send()s
              100 ms apart (TCP_NODELAY, so two segments): the first cut
              inside the Host value ("Host: 198.18" | ".0.10\\r\\n..."), the
              second right after the whole Host line, before the end of its
              header block.
  chunked     a POST with Transfer-Encoding: chunked: three chunks (one with a
              chunk extension) in three segments, a trailer, then a GET on the
              same connection. The chunk data holds a "Host: FACADE" line.
  not-http    800 bytes that are not HTTP (a TLS-like 0x16 0x03 0x01, then
              random bytes from random.Random(20240603) without CR or LF), a
              CRLF, then reads the server's 400 answer until it closes.
  retransmit  keep-alive: GET 1, read its response; then GET 2 is sent with
              IP_TOS 0x20 (the tc-BPF program drop-marked.bpf.c drops it on the
              server's ingress), TOS goes back to 0 at once, and 30 ms later
              GET 3 (Connection: close) follows. The server receives GET 3 out
              of order and SACKs it; the client retransmits GET 2 (TOS 0 now,
              so it gets through). Reads both responses.
"""
import random
import socket
import sys
import time

MARK_TOS = 0x20


def connect(src, facade, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((src, 0))
    s.connect((facade, port))
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed")
        self.buf += chunk

    def response(self):
        """One final response (interim 1xx ones are skipped): (status, body)."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if 100 <= status < 200:
                continue
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(self.buf) < length:
                self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
            return status, body

    def until_close(self):
        try:
            while True:
                self._fill()
        except EOFError:
            return self.buf


def get(path, host, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fcap-filter-client\r\n%s\r\n"
            % (path, host, extra)).encode()


def pipelined(src, facade, port):
    s = connect(src, facade, port)
    requests = (get("/small.txt", facade)
                + b"GET /small.txt?2 HTTP/1.1\r\nhost:%s:%d\r\nAccept: */*\r\n\r\n"
                % (facade.encode(), port)
                + get("/small.txt?3", "shop.example")
                + get("/small.txt?4", "%s:8080" % facade, "Connection: close\r\n"))
    s.sendall(requests)
    r = Reader(s)
    statuses = [r.response()[0] for _ in range(4)]
    assert statuses == [200] * 4, statuses
    r.until_close()
    s.close()
    return "4 pipelined requests in %d bytes, answers %s" % (len(requests), statuses)


def split(src, facade, port):
    s = connect(src, facade, port)
    first = get("/small.txt", facade)
    cut = first.index(b"Host: ") + len(b"Host: ") + len(facade) // 2
    second = get("/medium.bin", facade, "Connection: close\r\n")
    cut2 = second.index(b"\r\n", second.index(b"Host: ")) + 2
    r = Reader(s)
    for request, at in ((first, cut), (second, cut2)):
        s.sendall(request[:at])
        time.sleep(0.1)
        s.sendall(request[at:])
        status, _ = r.response()
        assert status == 200, status
    r.until_close()
    s.close()
    return "2 requests, each sent in two segments"


def chunked(src, facade, port):
    s = connect(src, facade, port)
    chunks = [b"first chunk: a line that looks like a header\r\nHost: %s\r\n" % facade.encode(),
              b"x" * 700,
              b"GET /not-a-request HTTP/1.1\r\nHost: %s\r\n\r\n" % facade.encode()]
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: application/octet-stream\r\n\r\n" % facade.encode())
    time.sleep(0.02)
    for i, c in enumerate(chunks):
        ext = b";name=value" if i == 1 else b""
        s.sendall(b"%x%s\r\n%s\r\n" % (len(c), ext, c))
        time.sleep(0.02)
    s.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
    r = Reader(s)
    status, body = r.response()
    total = sum(len(c) for c in chunks)
    assert status == 200 and body == b"received %d bytes\n" % total, (status, body)
    s.sendall(get("/small.txt", facade, "Connection: close\r\n"))
    status, _ = r.response()
    assert status == 200, status
    r.until_close()
    s.close()
    return "chunked POST of %d bytes in %d chunks, then a GET" % (total, len(chunks))


def not_http(src, facade, port):
    s = connect(src, facade, port)
    rng = random.Random(20240603)
    junk = bytes([0x16, 0x03, 0x01])
    while len(junk) < 800:
        b = rng.randrange(256)
        if b not in (0x0d, 0x0a):
            junk += bytes([b])
    s.sendall(junk + b"\r\n")
    answer = Reader(s).until_close()
    s.close()
    return "%d bytes of junk, answer %r" % (len(junk) + 2, answer.split(b"\r\n", 1)[0])


def retransmit(src, facade, port):
    s = connect(src, facade, port)
    r = Reader(s)
    s.sendall(get("/small.txt", facade))
    assert r.response()[0] == 200
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, MARK_TOS)
    s.sendall(get("/small.txt?lost-once", facade))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0)
    time.sleep(0.03)
    s.sendall(get("/small.txt?3", facade, "Connection: close\r\n"))
    statuses = [r.response()[0], r.response()[0]]
    assert statuses == [200, 200], statuses
    r.until_close()
    s.close()
    return "3 requests, the second dropped once on the server's side"


def main():
    kind, src, facade, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    fn = {"pipelined": pipelined, "split": split, "chunked": chunked,
          "not-http": not_http, "retransmit": retransmit}[kind]
    print("%s %s: %s" % (kind, src, fn(src, facade, port)))


if __name__ == "__main__":
    main()
