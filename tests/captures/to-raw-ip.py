#!/usr/bin/python3
"""Convert an Ethernet (LINKTYPE_ETHERNET) pcap to a raw-IP one (LINKTYPE_RAW, 101).

Usage: /usr/bin/python3 tests/captures/to-raw-ip.py IN.pcap OUT.pcap

Every frame must be untagged Ethernet II carrying IPv4; the 14-byte Ethernet
header is stripped and the IP packet is written byte for byte, with the
original timestamp, by scapy's wrpcap(..., linktype=101).
"""
import sys

import logging

from scapy.all import IP, Ether, PcapReader, wrpcap

ETH_HLEN = 14
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    out = []
    with PcapReader(src) as reader:
        if reader.linktype != LINKTYPE_ETHERNET:
            sys.exit("%s: linktype %d, expected %d (Ethernet)"
                     % (src, reader.linktype, LINKTYPE_ETHERNET))
        for n, frame in enumerate(reader, 1):
            data = bytes(frame.original)
            if not isinstance(frame, Ether) or frame.type != 0x0800:
                sys.exit("%s: packet %d is not untagged Ethernet/IPv4" % (src, n))
            ip_bytes = data[ETH_HLEN:]
            pkt = IP(ip_bytes)
            if bytes(pkt) != ip_bytes:
                sys.exit("%s: packet %d does not round-trip through scapy" % (src, n))
            pkt.time = frame.time
            pkt.wirelen = (frame.wirelen or len(data)) - ETH_HLEN
            out.append(pkt)
    # scapy warns that IP objects are not of linktype 101: that is the point
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    wrpcap(dst, out, linktype=LINKTYPE_RAW)
    print("%s: %d packets -> %s (linktype %d)" % (src, len(out), dst, LINKTYPE_RAW))


if __name__ == "__main__":
    main()
