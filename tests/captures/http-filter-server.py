#!/usr/bin/python3
"""The server of the http-filter capture (make-captures.sh): what
`python3 -m http.server --protocol HTTP/1.1` does, plus POST.

A POST body is read whole (Content-Length, or Transfer-Encoding: chunked with
chunk extensions and trailers) and answered with 200 and "received N bytes",
so no body is ever left unread (an unread body would make the close send an
RST). "Expect: 100-continue" gets http.server's usual "100 Continue".

usage: http-filter-server.py ADDRESS PORT DIRECTORY
"""
import functools
import http.server
import sys


def read_chunked(rfile):
    body = b""
    while True:
        size_line = rfile.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailer lines
            return body
        body += rfile.read(size)
        if rfile.readline(1024) not in (b"\r\n", b"\n"):
            raise ValueError("bad chunk terminator")


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        codings = self.headers.get("Transfer-Encoding", "")
        if codings and codings.split(",")[-1].strip().lower() == "chunked":
            body = read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = ("received %d bytes\n" % len(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def main():
    address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    handler = functools.partial(Handler, directory=directory)
    server = http.server.ThreadingHTTPServer((address, port), handler)
    print("serving on %s:%d" % (address, port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
