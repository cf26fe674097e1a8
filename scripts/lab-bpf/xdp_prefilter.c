/* The lab's xdp-prefilter fault: an XDP program on a node's uplink that drops VXLAN (UDP 8472),
 * as a CIDR or port prefilter (Cilium's XDP prefilter, a DDoS filter) would when misconfigured.
 * No headers: the lab compiles it with clang -target bpf where nothing else is installed. */
struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };
#define SEC(n) __attribute__((section(n), used))
#define XDP_DROP 1
#define XDP_PASS 2

SEC("xdp") int lab_prefilter(struct xdp_md *ctx)
{
	unsigned char *d = (unsigned char *)(unsigned long)ctx->data;
	unsigned char *end = (unsigned char *)(unsigned long)ctx->data_end;

	/* Ethernet, IPv4 without options, UDP destination port */
	if (d + 14 + 20 + 4 > end)
		return XDP_PASS;
	if (d[12] != 0x08 || d[13] != 0x00 || d[14] != 0x45 || d[23] != 17)
		return XDP_PASS;
	if (d[36] == (8472 >> 8) && d[37] == (8472 & 0xff))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
