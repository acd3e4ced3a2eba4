#!/usr/bin/python3
"""Write tests/data/checksum_vectors.txt: address/port rewrite test vectors made by scapy.

Usage (from the repository root):
  /usr/bin/python3 tests/captures/make-checksum-vectors.py [OUT]
  (OUT defaults to tests/data/checksum_vectors.txt next to this tests/ tree)

Each vector line is
  NAME ORIG_HEX FIELD NEWADDR NEWPORT EXPECTED_HEX
ORIG_HEX is an IPv4+TCP packet (no link header) built by scapy with correct IP
and TCP checksums. FIELD is "dst" (rewrite destination address and destination
port, as a load balancer does towards a server) or "src" (rewrite source
address and source port, as on the way back). EXPECTED_HEX is ORIG with that
address and port replaced and both checksums recomputed from scratch by scapy
(chksum fields deleted, packet rebuilt). An incremental update (RFC 1624) must
give exactly EXPECTED.

Everything is deterministic (fixed seeds, fixed field values): running the
script twice gives the same file. Besides scapy, each vector is checked here
with a plain one's complement sum, EXPECTED is checked to differ from ORIG
only in the rewritten address, port and the two checksum fields, and an RFC
1624 eqn 3 incremental update must reproduce EXPECTED's checksums.

Edge cases are found by search over one 16-bit word (a payload word or the IP
id), verified by scapy for every candidate.
"""
import os
import random
import struct
import sys

from scapy.all import IP, TCP, IPOption_NOP, IPOption_RR, Raw
import scapy

FACADE = ("198.18.0.10", 80)
SERVERS = [("198.18.1.11", 8080), ("198.18.1.12", 8081), ("198.18.1.13", 80)]
CLIENTS = ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]

rng = random.Random(0x46554C43)  # "FULC"


# ---------------------------------------------------------------- helpers
def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    return s


def check_by_hand(raw):
    """Independent check: IP header and TCP pseudo-header sums must be 0xffff."""
    ihl = (raw[0] & 0x0F) * 4
    total = struct.unpack("!H", raw[2:4])[0]
    assert total == len(raw), "total length"
    assert ones_sum(raw[:ihl]) == 0xFFFF, "IP header checksum"
    seg = raw[ihl:total]
    pseudo = raw[12:16] + raw[16:20] + struct.pack("!BBH", 0, 6, len(seg))
    assert ones_sum(pseudo + seg) == 0xFFFF, "TCP checksum"


def build(ip, tcp, payload=b""):
    """Packet bytes with both checksums computed by scapy."""
    pkt = ip / tcp
    if payload:
        pkt = pkt / Raw(payload)
    raw = bytes(pkt)
    again = IP(raw)
    assert bytes(again) == raw, "scapy round trip"
    check_by_hand(raw)
    return raw


def rewrite(orig, field, addr, port):
    """ORIG with FIELD address/port replaced, checksums recomputed from scratch."""
    pkt = IP(orig)
    if field == "dst":
        pkt.dst = addr
        pkt[TCP].dport = port
    elif field == "src":
        pkt.src = addr
        pkt[TCP].sport = port
    else:
        raise ValueError(field)
    del pkt.chksum
    del pkt[TCP].chksum
    raw = bytes(IP(bytes(pkt)))
    check_by_hand(raw)
    # only address, port and the two checksums may differ
    ihl = (orig[0] & 0x0F) * 4
    allowed = {10, 11, ihl + 16, ihl + 17}
    allowed |= set(range(16, 20)) if field == "dst" else set(range(12, 16))
    allowed |= {ihl + 2, ihl + 3} if field == "dst" else {ihl, ihl + 1}
    assert len(raw) == len(orig)
    diff = {i for i in range(len(raw)) if raw[i] != orig[i]}
    assert diff <= allowed, (field, sorted(diff - allowed))
    return raw


def tcp_csum(raw):
    ihl = (raw[0] & 0x0F) * 4
    return struct.unpack("!H", raw[ihl + 16:ihl + 18])[0]


def ip_csum(raw):
    return struct.unpack("!H", raw[10:12])[0]


def ones_add(a, b):
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def search_word(make, csum_of, target, what):
    """Find w with csum_of(make(w)) == target, w being a 16-bit word that the
    checksum covers. The search starts at the value one's complement algebra
    predicts (checksum(w) = ~(S0 + w), S0 the sum with w = 0) and tries every
    16-bit value from there, each one checked by scapy."""
    start = ones_add(~target & 0xFFFF, csum_of(make(0))) & 0xFFFF
    for k in range(0x10000):
        w = (start + k) & 0xFFFF
        result = make(w)
        if csum_of(result) == target:
            return w, result
    raise SystemExit("no 16-bit value gives " + what)


def ts_opt():
    return ("Timestamp", (rng.randrange(1 << 32), rng.randrange(1 << 32)))


def isn():
    return rng.randrange(1 << 32)


# ---------------------------------------------------------------- vectors
vectors = []   # (name, comment, orig, field, addr, port)


def add(name, comment, orig, field, addr, port):
    vectors.append((name, comment, orig, field, addr, port))


def c2f(client, cport, flags, payload=b"", options=(), ipflags="DF", ipopts=None,
        ttl=64, tos=0, ack=None, window=502):
    """client -> facade packet."""
    ip = IP(src=client, dst=FACADE[0], id=rng.randrange(0x10000), flags=ipflags,
            ttl=ttl, tos=tos)
    if ipopts is not None:
        ip.options = ipopts
    tcp = TCP(sport=cport, dport=FACADE[1], seq=isn(), flags=flags,
              ack=ack if ack is not None else (isn() if "A" in flags else 0),
              window=window, options=list(options))
    return build(ip, tcp, payload)


def s2c(server, client, cport, flags, payload=b"", options=(), ipflags="DF",
        ipopts=None, ttl=64, window=509):
    """server -> client packet (before the source is rewritten to the facade)."""
    ip = IP(src=server[0], dst=client, id=rng.randrange(0x10000), flags=ipflags, ttl=ttl)
    if ipopts is not None:
        ip.options = ipopts
    tcp = TCP(sport=server[1], dport=cport, seq=isn(), ack=isn() if "A" in flags else 0,
              flags=flags, window=window, options=list(options))
    return build(ip, tcp, payload)


def http_get(path):
    return ("GET %s HTTP/1.1\r\nHost: 198.18.0.10\r\nUser-Agent: fulcrum-vectors\r\n"
            "Accept: */*\r\n\r\n" % path).encode()


# SYN with the options Linux sends: MSS, SACK-permitted, timestamps, window scale
add("syn_options_dnat", "SYN with MSS, SACK-permitted, timestamps, NOP, window scale; DF",
    c2f(CLIENTS[0], 40001, "S", window=64240,
        options=[("MSS", 1460), ("SAckOK", b""), ts_opt(), ("NOP", None), ("WScale", 7)]),
    "dst", *SERVERS[0])
add("synack_options_snat", "SYN-ACK from a server with MSS, SACK-permitted, timestamps, wscale",
    s2c(SERVERS[0], CLIENTS[0], 40001, "SA", window=65160,
        options=[("MSS", 1460), ("SAckOK", b""), ts_opt(), ("NOP", None), ("WScale", 10)]),
    "src", *FACADE)
add("ack_pure_ts_dnat", "pure ACK with NOP,NOP,timestamps (data offset 8)",
    c2f(CLIENTS[1], 40002, "A", options=[("NOP", None), ("NOP", None), ts_opt()]),
    "dst", *SERVERS[1])
add("ack_pure_nooptions_snat", "pure ACK without TCP options (data offset 5)",
    s2c(SERVERS[1], CLIENTS[1], 40002, "A"), "src", *FACADE)
add("data_even_dnat", "PSH|ACK, HTTP GET, even payload length",
    c2f(CLIENTS[2], 40003, "PA", payload=http_get("/medium.bin")[:80],
        options=[("NOP", None), ("NOP", None), ts_opt()]),
    "dst", *SERVERS[2])
add("data_odd_dnat", "PSH|ACK, odd payload length (37)",
    c2f(CLIENTS[3], 40004, "PA", payload=bytes(rng.randrange(256) for _ in range(37))),
    "dst", *SERVERS[0])
add("data_odd1_snat", "ACK with a 1-byte payload",
    s2c(SERVERS[2], CLIENTS[3], 40004, "A", payload=b"\xa5"), "src", *FACADE)
add("data_full_mss_snat", "full-size segment: 1448 bytes of payload with timestamps, DF",
    s2c(SERVERS[0], CLIENTS[0], 40001, "A", payload=rng.randbytes(1448),
        options=[("NOP", None), ("NOP", None), ts_opt()]),
    "src", *FACADE)
add("fin_dnat", "FIN|ACK from the client",
    c2f(CLIENTS[0], 40005, "FA", options=[("NOP", None), ("NOP", None), ts_opt()]),
    "dst", *SERVERS[1])
add("fin_snat", "FIN|PSH|ACK from a server carrying its last 5 data bytes (odd length)",
    s2c(SERVERS[1], CLIENTS[0], 40005, "FPA", payload=b"done\n"), "src", *FACADE)
add("rst_ack_dnat", "RST|ACK from the client", c2f(CLIENTS[1], 40006, "RA", window=0),
    "dst", *SERVERS[2])
add("rst_snat", "bare RST (no ACK) from a server",
    s2c(SERVERS[2], CLIENTS[1], 40006, "R", window=0), "src", *FACADE)
add("ipopts_nop_dnat", "IPv4 options: 4 x NOP, IHL 6",
    c2f(CLIENTS[2], 40007, "PA", payload=http_get("/small.txt")[:32],
        ipopts=[IPOption_NOP()] * 4),
    "dst", *SERVERS[0])
add("ipopts_rr_snat", "IPv4 options: record route with 2 free slots + NOP pad, IHL 8, odd payload",
    s2c(SERVERS[1], CLIENTS[2], 40007, "PA", payload=b"HTTP/1.1 200 OK\r\n",
        ipopts=[IPOption_RR(length=11, pointer=4, routers=["0.0.0.0", "0.0.0.0"]),
                IPOption_NOP()]),
    "src", *FACADE)
add("ipopts_rr_dnat", "IPv4 options: record route with one recorded hop, IHL 7, non-DF",
    c2f(CLIENTS[3], 40008, "A", ipflags=0,
        ipopts=[IPOption_RR(length=7, pointer=8, routers=["198.18.0.254"]), IPOption_NOP()]),
    "dst", *SERVERS[2])
add("non_df_dnat", "DF clear, fragment offset 0, TOS/ECN bits set (ECT(0))",
    c2f(CLIENTS[0], 40009, "PA", payload=b"x" * 10, ipflags=0, tos=0x02),
    "dst", *SERVERS[1])
add("df_ttl1_snat", "DF set, TTL 1", s2c(SERVERS[0], CLIENTS[2], 40010, "A", ttl=1),
    "src", *FACADE)
add("port_only_dnat", "same address, only the destination port changes (80 -> 8080)",
    c2f(CLIENTS[1], 40011, "PA", payload=b"ping"), "dst", FACADE[0], 8080)
add("port_only_snat", "same address, only the source port changes (8080 -> 80)",
    build(IP(src=FACADE[0], dst=CLIENTS[1], id=rng.randrange(0x10000), flags="DF"),
          TCP(sport=8080, dport=40011, seq=isn(), ack=isn(), flags="A", window=509)),
    "src", FACADE[0], 80)
add("addr_only_dnat", "only the destination address changes (port 80 kept)",
    c2f(CLIENTS[2], 40012, "PA", payload=b"GET / HTTP/1.0\r\n\r\n"), "dst", *SERVERS[2])
add("addr_only_snat", "only the source address changes (port 80 kept)",
    s2c(SERVERS[2], CLIENTS[2], 40012, "A"), "src", FACADE[0], 80)
add("addr_198_19_dnat", "addresses in 198.19.0.0/16: every address byte changes",
    build(IP(src="198.19.255.254", dst=FACADE[0], id=rng.randrange(0x10000), flags="DF"),
          TCP(sport=65535, dport=80, seq=isn(), ack=isn(), flags="PA", window=1),
          b"\xff\xff\x00\x00\xff"),
    "dst", "198.19.0.1", 1)
add("noop_rewrite_dnat", "rewrite to the same address and port: EXPECTED == ORIG",
    c2f(CLIENTS[3], 40013, "A"), "dst", *FACADE)


# --- edge cases, found by searching one 16-bit word -----------------------
def with_word(prefix, w, suffix):
    return prefix + struct.pack("!H", w) + suffix


def edge_expected_tcp(name, comment, field, newaddr, newport, target, src_dst):
    """payload word chosen so that the TCP checksum AFTER the rewrite == target."""
    client, cport = src_dst
    prefix, suffix = b"EDGE", b"-fulcrum"
    ipid = rng.randrange(0x10000)
    seq, ack = isn(), isn()

    def make(w):
        if field == "dst":
            ip = IP(src=client, dst=FACADE[0], id=ipid, flags="DF")
            tcp = TCP(sport=cport, dport=FACADE[1], seq=seq, ack=ack, flags="PA", window=502)
        else:
            ip = IP(src=SERVERS[0][0], dst=client, id=ipid, flags="DF")
            tcp = TCP(sport=SERVERS[0][1], dport=cport, seq=seq, ack=ack, flags="PA", window=509)
        return ip / tcp / Raw(with_word(prefix, w, suffix))

    def csum_after(pkt):
        return tcp_csum(rewrite_fast(bytes(pkt), field, newaddr, newport))

    w, pkt = search_word(make, csum_after, target, name)
    add(name, comment + " (payload word 0x%04x)" % w, bytes_checked(pkt),
        field, newaddr, newport)


def bytes_checked(pkt):
    raw = bytes(pkt)
    assert bytes(IP(raw)) == raw
    check_by_hand(raw)
    return raw


def rewrite_fast(orig, field, addr, port):
    """The same rewrite via scapy, without the diff checks (used inside searches)."""
    pkt = IP(orig)
    setattr(pkt, field, addr)
    if field == "dst":
        pkt[TCP].dport = port
    else:
        pkt[TCP].sport = port
    del pkt.chksum
    del pkt[TCP].chksum
    return bytes(pkt)


def edge_orig_tcp(name, comment, field, newaddr, newport, target):
    """payload word chosen so that the ORIGINAL TCP checksum == target."""
    prefix, suffix = b"ORIG", b"!"
    ipid, seq, ack = rng.randrange(0x10000), isn(), isn()

    def make(w):
        return (IP(src=CLIENTS[1], dst=FACADE[0], id=ipid, flags="DF")
                / TCP(sport=40020, dport=FACADE[1], seq=seq, ack=ack, flags="PA", window=502)
                / Raw(with_word(prefix, w, suffix)))

    w, pkt = search_word(make, lambda p: tcp_csum(bytes(p)), target, name)
    add(name, comment + " (payload word 0x%04x)" % w, bytes_checked(pkt), field, newaddr, newport)


def edge_ip(name, comment, field, newaddr, newport, target, after):
    """IP id chosen so that the IP header checksum (after or before rewrite) == target."""
    seq, ack = isn(), isn()

    def make(w):
        return (IP(src=CLIENTS[2], dst=FACADE[0], id=w, flags="DF")
                / TCP(sport=40030, dport=FACADE[1], seq=seq, ack=ack, flags="A", window=502))

    def csum_of(pkt):
        raw = bytes(pkt)
        return ip_csum(rewrite_fast(raw, field, newaddr, newport) if after else raw)

    w, pkt = search_word(make, csum_of, target, name)
    add(name, comment + " (IP id 0x%04x)" % w, bytes_checked(pkt), field, newaddr, newport)


edge_expected_tcp("tcp_csum_after_zero_dnat",
                  "EXPECTED TCP checksum is 0x0000 (one's complement sum 0xffff)",
                  "dst", *SERVERS[0], 0x0000,
                  (CLIENTS[0], 40014))
edge_expected_tcp("tcp_csum_after_zero_snat", "EXPECTED TCP checksum is 0x0000, source rewrite",
                  "src", *FACADE, 0x0000, (CLIENTS[3], 40015))
edge_expected_tcp("tcp_csum_after_fffe_dnat", "EXPECTED TCP checksum is 0xfffe",
                  "dst", *SERVERS[1], 0xFFFE, (CLIENTS[1], 40016))
edge_orig_tcp("tcp_csum_orig_fffe_dnat",
              "ORIG TCP checksum is 0xfffe, the largest value a from-scratch sum gives",
              "dst", *SERVERS[2], 0xFFFE)
edge_orig_tcp("tcp_csum_orig_zero_dnat",
              "ORIG TCP checksum is 0x0000, so ~HC is 0xffff",
              "dst", *SERVERS[0], 0x0000)
edge_orig_tcp("tcp_csum_orig_0001_dnat", "ORIG TCP checksum is 0x0001",
              "dst", *SERVERS[1], 0x0001)
edge_ip("ip_csum_after_zero_dnat", "EXPECTED IP header checksum is 0x0000",
        "dst", *SERVERS[2], 0x0000, True)
edge_ip("ip_csum_orig_zero_dnat", "ORIG IP header checksum is 0x0000",
        "dst", *SERVERS[0], 0x0000, False)


# ------------------------------------------------- incremental cross-check
def words(b):
    return [w for (w,) in struct.iter_unpack("!H", b)]


def rfc1624_eqn3(hc, old, new):
    """HC' = ~(~HC + ~m + m'), RFC 1624 eqn 3 (correct in every case)."""
    s = ~hc & 0xFFFF
    for m, m2 in zip(old, new):
        s = ones_add(ones_add(s, ~m & 0xFFFF), m2)
    return ~s & 0xFFFF


def rfc1141(hc, old, new):
    """HC' = HC + m + ~m', RFC 1141 (gives 0xffff where 0x0000 is right)."""
    s = hc
    for m, m2 in zip(old, new):
        s = ones_add(ones_add(s, m), ~m2 & 0xFFFF)
    return s & 0xFFFF


def incremental(update, orig, field, addr, port):
    """(ip, tcp) checksums after the rewrite by an incremental update."""
    ihl = (orig[0] & 0x0F) * 4
    a_off = 16 if field == "dst" else 12
    p_off = ihl + (2 if field == "dst" else 0)
    old_a, new_a = words(orig[a_off:a_off + 4]), words(bytes(map(int, addr.split("."))))
    old_p, new_p = words(orig[p_off:p_off + 2]), [port]
    return (update(ip_csum(orig), old_a, new_a),
            update(tcp_csum(orig), old_a + old_p, new_a + new_p))


# ---------------------------------------------------------------- output
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(
        os.path.join(here, "..", "data", "checksum_vectors.txt"))
    names = [v[0] for v in vectors]
    assert len(names) == len(set(names)), "duplicate names"
    lines = [
        "# IPv4/TCP address+port rewrite vectors, generated by scapy %s:" % scapy.VERSION,
        "#   /usr/bin/python3 tests/captures/make-checksum-vectors.py",
        "# Do not edit by hand; rerun the command (deterministic: same output every run).",
        "#",
        "# NAME ORIG_HEX FIELD NEWADDR NEWPORT EXPECTED_HEX",
        "#   ORIG_HEX      IPv4 header + TCP segment, both checksums correct",
        "#   FIELD         dst: replace destination address and destination port",
        "#                 src: replace source address and source port",
        "#   EXPECTED_HEX  ORIG after the replacement, IP and TCP checksums recomputed",
        "#                 from scratch by scapy (chksum fields deleted, rebuilt)",
        "# A from-scratch TCP checksum is never 0xffff: scapy (like Linux) transmits a",
        "# zero result as 0x0000 (see the *_zero vectors), unlike UDP's 0 -> 0xffff.",
        "# The comment line before each vector says what it covers, with the",
        "# checksums before -> after. The generator also checks that the RFC 1624",
        "# eqn 3 incremental update, HC' = ~(~HC + ~m + m'), gives EXPECTED for every",
        "# vector, and notes where the older RFC 1141 form, HC' = HC + m + ~m', does not.",
        "",
    ]
    for name, comment, orig, field, addr, port in vectors:
        exp = rewrite(orig, field, addr, port)
        want = (ip_csum(exp), tcp_csum(exp))
        assert incremental(rfc1624_eqn3, orig, field, addr, port) == want, name
        note = ""
        old = incremental(rfc1141, orig, field, addr, port)
        if old != want:
            note = " [an RFC 1141 update gives ip %04x, tcp %04x]" % old
        lines.append("# %s: %s; ip %04x -> %04x, tcp %04x -> %04x%s"
                     % (name, comment, ip_csum(orig), want[0], tcp_csum(orig), want[1], note))
        lines.append("%s %s %s %s %d %s" % (name, orig.hex(), field, addr, port, exp.hex()))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d vectors" % (out, len(vectors)))


if __name__ == "__main__":
    main()
