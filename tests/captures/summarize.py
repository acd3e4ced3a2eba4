#!/usr/bin/python3
"""Measure what a capture holds and write it as JSON (tests/captures/expected.json).

Usage:
  /usr/bin/python3 tests/captures/summarize.py [--facade IP:PORT] [-o OUT.json] FILE.pcap...

For each file the pcap container is walked record by record with struct (so a
damaged file is described exactly: bad magic, or where it is truncated), then
every packet is dissected with scapy (Ethernet, optionally 802.1Q, or raw IP).

Per capture:
  packets        number of packet records
  connections    TCP connections, i.e. distinct client SYNs (SYN without ACK)
                 towards the facade; a retransmitted SYN (same ISN) is not a
                 new connection
  rst_closed     connections in which at least one RST was seen
  fin_closed     connections without any RST in which both sides sent a FIN
  open           the rest (neither closed by FIN both ways nor reset)
  bad_ip_checksums / bad_tcp_checksums   packets whose checksum differs from
                 the one scapy recomputes from scratch (0 = capture is clean)
  per_connection one entry per connection, in order of its SYN: client
                 address:port, packets, TCP payload bytes each way, HTTP
                 requests, retransmitted data segments (ending at or below the
                 highest sequence number already seen in that direction, so a
                 segment the capture shows after a later one counts too;
                 payload byte counts include them) and how many of them the
                 client sent, client SYNs sent again with the same ISN,
                 close ("fin"/"rst"/"open") and who closed first.

HTTP, per connection (and summed per capture): the client's byte stream is
put together by sequence number (each byte from the first segment that brings
it in order) and read as HTTP/1.x requests (see scan_http):
  http_requests       complete request heads
  facade_hosts        requests whose Host value is the facade's address, alone
                      or with ":<facade port>"
  facade_hosts_split  of those, values that begin in an earlier segment than
                      the one that ends their header block
  not_http            the stream does not begin with a request line
"""
import re
import argparse
import json
import os
import struct
import sys

from scapy.all import IP, TCP, Dot1Q, Ether

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "usec"),
    b"\xa1\xb2\xc3\xd4": (">", "usec"),
    b"\x4d\x3c\xb2\xa1": ("<", "nsec"),
    b"\xa1\xb2\x3c\x4d": (">", "nsec"),
}
LINKTYPE_NAMES = {1: "ETHERNET", 101: "RAW"}
REQUEST_LINE = re.compile(rb"([A-Z]+) ([^\x00-\x20\x7f]+) (HTTP/1\.[0-9])")
OWS = b" \t"


def scan_http(stream, segment_of, facade):
    """Reads a client byte stream as HTTP/1.x requests. `segment_of[i]` says
    which segment brought byte i. Returns (requests, facade hosts, of them
    split, not HTTP). Bodies (Content-Length, chunked) are skipped; the scan
    stops at the first thing it cannot read, at CONNECT and after an Upgrade
    request, or where the stream ends in the middle of a request."""
    requests = facade_hosts = split = 0
    pos = 0

    def line_at(p):
        end = stream.find(b"\n", p)
        if end < 0:
            return None, None
        return stream[p:end].rstrip(b"\r"), end + 1

    while pos < len(stream):
        while stream.startswith(b"\r\n", pos) or stream.startswith(b"\n", pos):
            pos += 2 if stream.startswith(b"\r\n", pos) else 1
        line, nxt = line_at(pos)
        if line is None:
            break
        m = REQUEST_LINE.fullmatch(line)
        if not m:
            return requests, facade_hosts, split, requests == 0
        method = m.group(1)
        pos = nxt
        host = None
        length = 0
        chunked = upgrade = False
        while True:
            start = pos
            line, nxt = line_at(pos)
            if line is None:
                return requests, facade_hosts, split, False
            pos = nxt
            if line == b"":
                break
            name, _, value = line.partition(b":")
            name = name.lower()
            lead = len(value) - len(value.lstrip(OWS))
            value = value.strip(OWS)
            if name == b"host":
                host = (value, start + len(name) + 1 + lead)
            elif name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.split(b",")[-1].strip(OWS).lower() == b"chunked"
            elif name == b"upgrade":
                upgrade = True
        requests += 1
        if host is not None and host[0] in (facade[0], facade[0] + b":" + facade[1]):
            facade_hosts += 1
            if segment_of[host[1]] != segment_of[pos - 1]:
                split += 1
        if method == b"CONNECT":
            break
        if chunked:
            while True:
                line, nxt = line_at(pos)
                if line is None:
                    return requests, facade_hosts, split, False
                size = int(line.split(b";")[0].strip(OWS), 16)
                pos = nxt
                if size == 0:
                    while True:
                        line, pos = line_at(pos)
                        if line is None or line == b"":
                            break
                    break
                pos += size + 2
        else:
            pos += length
        if upgrade:
            break
    return requests, facade_hosts, split, False


def client_stream(segments, isn):
    """The client's bytes in order, and for each the index of the segment that
    brought it first in order (a segment starting past the bytes so far
    brings nothing, as a receiver would wait for the gap)."""
    data = bytearray()
    origin = []
    for index, (seq, payload) in enumerate(segments):
        offset = (seq - isn - 1) & 0xFFFFFFFF
        if offset > len(data) or offset + len(payload) <= len(data):
            continue
        new = payload[len(data) - offset:]
        data += new
        origin += [index] * len(new)
    return bytes(data), origin


def walk_pcap(data):
    """Return (header dict, list of (ts, bytes), error dict or None)."""
    if len(data) < 24 or data[:4] not in MAGICS:
        return None, [], {"error": "bad_magic", "size": len(data)}
    endian, res = MAGICS[data[:4]]
    vmaj, vmin, _tz, _sig, snaplen, linktype = struct.unpack(endian + "HHiIII", data[4:24])
    hdr = {"byte_order": "little" if endian == "<" else "big", "ts_resolution": res,
           "version": "%d.%d" % (vmaj, vmin), "snaplen": snaplen,
           "linktype": linktype, "linktype_name": LINKTYPE_NAMES.get(linktype, "?")}
    recs = []
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            return hdr, recs, {"error": "truncated", "size": len(data),
                               "complete_packets": len(recs),
                               "truncated_record": len(recs) + 1,
                               "record_offset": off, "detail": "inside record header"}
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            return hdr, recs, {"error": "truncated", "size": len(data),
                               "complete_packets": len(recs),
                               "truncated_record": len(recs) + 1,
                               "record_offset": off, "record_incl_len": incl,
                               "record_bytes_present": len(data) - off - 16,
                               "detail": "inside packet data"}
        recs.append(((sec, frac), data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return hdr, recs, None


def checksums_ok(ip):
    fresh = ip.copy()
    del fresh.chksum
    ip_ok = IP(bytes(fresh)).chksum == ip.chksum
    tcp_ok = True
    if TCP in ip:
        del fresh[TCP].chksum
        tcp_ok = IP(bytes(fresh))[TCP].chksum == ip[TCP].chksum
    return ip_ok, tcp_ok


def summarize(path, facade_ip, facade_port):
    data = open(path, "rb").read()
    hdr, recs, err = walk_pcap(data)
    if hdr is None:
        return err
    out = dict(hdr)
    if err:
        out.update(err)
        return out

    conns = []          # in SYN order
    by_tuple = {}       # (client ip, client port) -> current connection
    bad_ip = bad_tcp = 0
    vlans = set()
    max_ip_len = 0
    non_tcp = 0
    for _ts, raw in recs:
        if hdr["linktype"] == 1:
            frame = Ether(raw)
            if Dot1Q in frame:
                vlans.add(frame[Dot1Q].vlan)
            ip = frame[IP] if IP in frame else None
        elif hdr["linktype"] == 101:
            ip = IP(raw)
        else:
            raise SystemExit("%s: unsupported linktype %d" % (path, hdr["linktype"]))
        if ip is None or TCP not in ip:
            non_tcp += 1
            continue
        max_ip_len = max(max_ip_len, ip.len)
        ip_ok, tcp_ok = checksums_ok(ip)
        bad_ip += not ip_ok
        bad_tcp += not tcp_ok
        tcp = ip[TCP]
        if (ip.dst, tcp.dport) == (facade_ip, facade_port):
            key, from_client = (ip.src, tcp.sport), True
        elif (ip.src, tcp.sport) == (facade_ip, facade_port):
            key, from_client = (ip.dst, tcp.dport), False
        else:
            non_tcp += 1
            continue
        flags = int(tcp.flags)
        syn, ack, fin, rst = flags & 0x02, flags & 0x10, flags & 0x01, flags & 0x04
        c = by_tuple.get(key)
        if from_client and syn and not ack and c is not None and c["isn"] == tcp.seq:
            c["syn_retransmissions"] += 1
        if from_client and syn and not ack and (c is None or c["isn"] != tcp.seq):
            c = {"client": "%s:%d" % key, "isn": tcp.seq, "packets": 0,
                 "client_payload": 0, "server_payload": 0, "http_requests": 0,
                 "fin_client": False, "fin_server": False, "rst": False,
                 "first_close": None, "retransmissions": 0, "syn_retransmissions": 0,
                 "client_retransmissions": 0, "next_seq": {"client": None, "server": None},
                 "segments": []}
            conns.append(c)
            by_tuple[key] = c
        if c is None:
            continue    # mid-stream packet of a connection whose SYN is not captured
        c["packets"] += 1
        payload = ip.len - 4 * ip.ihl - 4 * tcp.dataofs
        side = "client" if from_client else "server"
        c[side + "_payload"] += payload
        if payload > 0:
            # a data segment that ends at or before the highest sequence
            # number already sent that way is a retransmission
            end = (tcp.seq + payload) & 0xFFFFFFFF
            top = c["next_seq"][side]
            if top is not None and ((top - end) & 0xFFFFFFFF) < 0x80000000:
                c["retransmissions"] += 1
                c["client_retransmissions"] += from_client
            else:
                c["next_seq"][side] = end
        if from_client and payload > 0 and not syn:
            c["segments"].append((tcp.seq, bytes(tcp.payload)[:payload]))
        if fin:
            c["fin_" + side] = True
        if rst:
            c["rst"] = True
        if (fin or rst) and c["first_close"] is None:
            c["first_close"] = "%s %s" % (side, "RST" if rst else "FIN")

    per_conn = []
    fin_closed = rst_closed = still_open = 0
    facade_key = (facade_ip.encode(), str(facade_port).encode())
    for c in conns:
        stream, origin = client_stream(c["segments"], c["isn"])
        (c["http_requests"], c["facade_hosts"], c["facade_hosts_split"],
         c["not_http"]) = scan_http(stream, origin, facade_key)
        if c["rst"]:
            close = "rst"
            rst_closed += 1
        elif c["fin_client"] and c["fin_server"]:
            close = "fin"
            fin_closed += 1
        else:
            close = "open"
            still_open += 1
        per_conn.append({"client": c["client"], "packets": c["packets"],
                         "client_payload": c["client_payload"],
                         "server_payload": c["server_payload"],
                         "http_requests": c["http_requests"],
                         "facade_hosts": c["facade_hosts"],
                         "facade_hosts_split": c["facade_hosts_split"],
                         "not_http": c["not_http"],
                         "retransmissions": c["retransmissions"],
                         "client_retransmissions": c["client_retransmissions"],
                         "syn_retransmissions": c["syn_retransmissions"], "close": close,
                         "first_close": c["first_close"]})
    out.update({
        "facade": "%s:%d" % (facade_ip, facade_port),
        "packets": len(recs),
        "non_facade_or_non_tcp_packets": non_tcp,
        "vlan_ids": sorted(vlans),
        "max_ip_total_length": max_ip_len,
        "bad_ip_checksums": bad_ip,
        "bad_tcp_checksums": bad_tcp,
        "connections": len(conns),
        "fin_closed": fin_closed,
        "rst_closed": rst_closed,
        "open": still_open,
        "clients": sorted({c["client"].split(":")[0] for c in conns},
                          key=lambda a: tuple(int(x) for x in a.split("."))),
        "http_requests": sum(c["http_requests"] for c in conns),
        "facade_hosts": sum(c["facade_hosts"] for c in conns),
        "facade_hosts_split": sum(c["facade_hosts_split"] for c in conns),
        "not_http_connections": sum(c["not_http"] for c in conns),
        "retransmissions": sum(c["retransmissions"] for c in conns),
        "client_retransmissions": sum(c["client_retransmissions"] for c in conns),
        "syn_retransmissions": sum(c["syn_retransmissions"] for c in conns),
        "client_payload_bytes": sum(c["client_payload"] for c in conns),
        "server_payload_bytes": sum(c["server_payload"] for c in conns),
        "per_connection": per_conn,
    })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facade", default="198.18.0.10:80")
    ap.add_argument("-o", "--output", help="JSON file to write (default: stdout)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    fip, fport = args.facade.rsplit(":", 1)
    result = {os.path.basename(f): summarize(f, fip, int(fport)) for f in args.files}
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for name, r in result.items():
        if "error" in r:
            print("%-22s error=%s" % (name, r["error"]), file=sys.stderr)
        else:
            print("%-22s packets=%d connections=%d fin_closed=%d rst_closed=%d open=%d "
                  "bad_csum=%d/%d vlans=%s" % (name, r["packets"], r["connections"],
                  r["fin_closed"], r["rst_closed"], r["open"], r["bad_ip_checksums"],
                  r["bad_tcp_checksums"], r["vlan_ids"]), file=sys.stderr)


if __name__ == "__main__":
    main()
