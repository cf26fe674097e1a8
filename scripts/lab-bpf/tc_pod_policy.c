/* The lab's tc-policy fault: a tc ingress program on a pod's host-side veth that drops the
 * pod's TCP connections to port 2483, as a BPF network-policy dataplane (Calico eBPF, Cilium)
 * does for a policy that denies it. No headers, as xdp_prefilter.c. */
struct __sk_buff { unsigned int len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto,
	priority, ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid, data, data_end; };
#define SEC(n) __attribute__((section(n), used))
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2

SEC("tc") int lab_pod_policy(struct __sk_buff *skb)
{
	unsigned char *d = (unsigned char *)(unsigned long)skb->data;
	unsigned char *end = (unsigned char *)(unsigned long)skb->data_end;

	if (d + 14 + 20 + 4 > end)
		return TC_ACT_UNSPEC;
	if (d[12] != 0x08 || d[13] != 0x00 || d[14] != 0x45 || d[23] != 6)
		return TC_ACT_UNSPEC;
	if (d[36] == (2483 >> 8) && d[37] == (2483 & 0xff))
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
