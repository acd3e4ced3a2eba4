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
                 requests (client segments starting with an HTTP method),
                 retransmitted data segments (ending at or below the highest
                 sequence number already seen in that direction; payload
                 byte counts include them), client SYNs sent again with the
                 same ISN,
                 close ("fin"/"rst"/"open") and who closed first.
"""
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
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ")


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
                 "next_seq": {"client": None, "server": None}}
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
            else:
                c["next_seq"][side] = end
        if from_client and payload > 0 and bytes(tcp.payload).startswith(HTTP_METHODS):
            c["http_requests"] += 1
        if fin:
            c["fin_" + side] = True
        if rst:
            c["rst"] = True
        if (fin or rst) and c["first_close"] is None:
            c["first_close"] = "%s %s" % (side, "RST" if rst else "FIN")

    per_conn = []
    fin_closed = rst_closed = still_open = 0
    for c in conns:
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
                         "retransmissions": c["retransmissions"],
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
        "retransmissions": sum(c["retransmissions"] for c in conns),
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
