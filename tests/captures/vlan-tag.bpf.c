// 802.1Q tagging with tc-BPF, used by make-captures.sh when the kernel has no
// VLAN sub-interfaces (CONFIG_VLAN_8021Q unset: "ip link add ... type vlan"
// fails with "Unknown device type").
//
// Attached with "tc filter ... bpf da obj" on both veth ends: on egress it
// pushes tag VLAN_ID (what VETH.100 would do when sending), on ingress it
// pops it (what VETH.100 would do when receiving). tcpdump on the veth sees
// the tagged frames in both directions, as on a trunk link.
//
// Build (one object per direction):
//   clang -O2 -target bpf -DVLAN_ID=100 -DVLAN_PUSH -c vlan-tag.bpf.c -o push.o
//   clang -O2 -target bpf -DVLAN_ID=100 -DVLAN_POP  -c vlan-tag.bpf.c -o pop.o
// No kernel or libbpf headers are needed.

#define SEC(name) __attribute__((section(name), used))

struct __sk_buff;

// helper ids from include/uapi/linux/bpf.h
static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, unsigned short vlan_proto,
                                 unsigned short vlan_tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
// htons(ETH_P_8021Q) on a little-endian host (BPF target is bpfel here)
#define ETH_P_8021Q_BE 0x0081

#ifndef VLAN_ID
#define VLAN_ID 100
#endif

#if defined(VLAN_PUSH)
SEC("tc") int vlan_push(struct __sk_buff *skb) {
    return bpf_skb_vlan_push(skb, ETH_P_8021Q_BE, VLAN_ID) ? TC_ACT_SHOT : TC_ACT_OK;
}
#elif defined(VLAN_POP)
SEC("tc") int vlan_pop(struct __sk_buff *skb) {
    return bpf_skb_vlan_pop(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}
#else
#error "define VLAN_PUSH or VLAN_POP"
#endif

char _license[] SEC("license") = "GPL";
