// Drops IPv4 TCP packets whose TOS byte carries the mark (DSCP CS1, 0x20),
// used by make-captures.sh for the http-filter capture: attached with
// "tc filter ... ingress bpf da obj" on the server's veth, it loses the one
// request segment the retransmit client sends while it has set IP_TOS 0x20.
// Linux writes the socket's current TOS into every (re)transmission, and the
// client sets it back to 0 right after that send, so the retransmission gets
// through: one loss, decided by the sender, no counter or randomness here.
// (The kernel of the project's machines has no tc actions such as gact, so
// "u32 ... action drop" is not available; direct-action BPF is.)
//
// Build: clang -O2 -target bpfel -c drop-marked.bpf.c -o drop-marked.o
// No kernel or libbpf headers are needed.

#define SEC(name) __attribute__((section(name), used))

struct __sk_buff;

// helper id from include/uapi/linux/bpf.h
static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, unsigned int offset, void *to,
                                  unsigned int len) = (void *)26;

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#ifndef MARK_TOS
#define MARK_TOS 0x20
#endif

SEC("tc") int drop_marked(struct __sk_buff *skb) {
    // Ethernet header (14 bytes), then the first 10 bytes of the IPv4 header.
    unsigned char h[24];
    if (bpf_skb_load_bytes(skb, 0, h, sizeof h)) return TC_ACT_OK;
    if (h[12] != 0x08 || h[13] != 0x00) return TC_ACT_OK;  // not IPv4
    if ((h[15] & 0xfc) != MARK_TOS) return TC_ACT_OK;       // TOS without the ECN bits
    if (h[23] != 6) return TC_ACT_OK;                       // not TCP
    return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
