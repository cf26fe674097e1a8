/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --path: the steps an skb takes before it is dropped, from tracepoints only, so it works on
 * every kernel the drop tracepoint does (no kprobes, no fentry: pwru and retis need one of
 * them); --path functions adds kernel functions where kprobes allow (at the end of this file).
 * Included by droptrace.bpf.c after the parser and the filters it reuses.
 *
 * An skb is known by its address. A path starts at the first step where the packet passes
 * the packet filters (--proto, --host, --port, the ethertype; not --netns or --iface: those
 * name where it dies, and the path crosses namespaces), collects steps, and ends when the skb
 * is freed: the drop copies it into its event, consume_skb forgets it. Frees the tracepoints
 * do not see (TCP's __kfree_skb of read data, GRO's merged heads) leave a path behind that a
 * later skb at the same address would inherit; three rules keep such a path from being told
 * as the new skb's (dt_path_stale): a path whose last step is older than a second, a driver's
 * fresh skb (GRO entry), and an skb with skb_iif 0 handed to a device or dropped while its
 * path says it was received and not sent since (delivered locally, then freed unseen), all
 * start again. The LRU hash bounds the memory whatever is missed.
 *
 * Identity: the skb keeps its address through veth (dev_forward_skb), bridges, routing,
 * netfilter, VXLAN/Geneve encapsulation (udp_tunnel_xmit_skb sends the same skb, headroom
 * grown in place) and decapsulation (the outer skb continues as the inner packet). It does not
 * through a clone (skb_clone: taps, tee, multicast copies) or a copy (skb_copy, pskb_copy,
 * segmentation's segments): those start their own path where they pass the filters.
 */
#ifndef DROPTRACE_PKT_PATH_BPF_H
#define DROPTRACE_PKT_PATH_BPF_H

/* A path whose newest step is older than this belongs to an earlier skb at the same address. */
#define DT_STEP_STALE_NS 1000000000ULL
/* A FIB lookup is the packet's when it runs on the CPU that just received it, this soon after. */
#define DT_FIB_WINDOW_NS 10000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64); /* resized by the loader with --path */
	__type(key, __u64);      /* the skb's address */
	__type(value, struct dt_pkt_path);
} dt_pkt_paths SEC(".maps");

/* Never written: the zeroes a new path starts from, and what an event without one carries. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_pkt_path);
} dt_no_pkt_path SEC(".maps");

/*
 * The skb this CPU received last, when it has a path, with its addresses: the FIB lookups that
 * follow on the same CPU (ip_route_input, rp_filter's reverse lookup) carry no skb, only the
 * flow they look up; a lookup is added to the path when its addresses are the packet's.
 */
struct dt_rx_cur {
	__u64 skb;
	__u64 ts_ns;
	__u32 netns;
	__u8 ipver;
	__u8 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rx_cur);
} dt_rx_cur SEC(".maps");

/*
 * The last skb this CPU found not wanted, its length and when: the next steps of the same
 * packet (the same skb and length, no header pushed or pulled since as encapsulation and
 * decapsulation would, within a millisecond) need not parse its headers again; each packet
 * takes 4 or 5 steps. A free the tracepoints see clears it, so a new skb at that address is
 * looked at; the millisecond bounds what an unseen free leaves.
 */
#define DT_REJECTED_NS 1000000ULL
struct dt_rejected {
	__u64 skb;
	__u64 ts_ns;
	__u32 len;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rejected);
} dt_rejected SEC(".maps");

/* Steps that come right after a driver pulled the Ethernet header: skb->data is at the IP header. */
static __always_inline bool dt_step_receives(__u8 kind)
{
	return kind == DT_STEP_RX || kind == DT_STEP_NETIF_RX || kind == DT_STEP_GRO;
}

/*
 * Index in step[] of the step seen n-th (from 0). Always below DT_STEPS, which clang knows and
 * the verifier does not: the empty asm hides the value so the mask (a no-op) stays.
 */
static __always_inline __u32 dt_path_index(__u32 n)
{
	__u32 i = n < DT_STEPS ? n : 1 + (n - 1) % (DT_STEPS - 1);

	asm volatile("" : "+r"(i));
	return i & (DT_STEPS - 1);
}

/*
 * Whether a stored path belongs to an earlier skb at this address (see the top of this file).
 * new_life: the skb is where a new skb can first be seen (net_dev_queue: a packet the host
 * makes) or at its drop. There, an skb with skb_iif 0 whose path says it was received and not
 * sent since is another skb: netif_receive_skb sets skb_iif, and only sending it on (a veth or
 * tunnel's skb_scrub_packet, after net_dev_start_xmit) clears it.
 */
static __always_inline bool dt_path_stale(const struct dt_pkt_path *p, __u32 skb_iif, __u64 now, bool new_life)
{
	if (!p->steps)
		return true;
	if (now - p->step[dt_path_index(p->steps - 1)].ts_ns > DT_STEP_STALE_NS)
		return true;
	return new_life && !skb_iif && p->received;
}

/* The next free step of a path, the oldest but the first once all are used. */
static __always_inline struct dt_step *dt_path_next(struct dt_pkt_path *p)
{
	__u32 i = dt_path_index(p->steps);

	p->steps++;
	return &p->step[i];
}

/* Whether an skb with no path starts one at a step of this kind: the packet filters, on its headers. */
static __always_inline bool dt_path_wanted(struct sk_buff *skb, __u8 kind, bool direct)
{
	struct dt_pkt pkt = {};
	__u16 ethertype = bpf_ntohs(DT_RD(direct, skb, protocol));
	__u16 nh;

	if (CFG.ethertype && ethertype != CFG.ethertype)
		return false;
	if (!CFG.l4proto && !CFG.host_ver && !CFG.port)
		return true;
	/* receive steps come right after the driver pulled the Ethernet header: data is at IP */
	if (dt_step_receives(kind))
		nh = (__u16)(DT_RD(direct, skb, data) - DT_RD(direct, skb, head));
	else
		nh = DT_RD(direct, skb, network_header);
	dt_parse(skb, ethertype, nh, &pkt, direct);
	return dt_pkt_wanted(&pkt);
}

/* The skb's path to add a step to: the one it has, or a new one when it passes the filters. */
static __always_inline struct dt_pkt_path *dt_path_for(struct sk_buff *skb, __u8 kind, __u64 now, bool direct)
{
	__u64 key = (__u64)skb;
	__u32 zero = 0;
	struct dt_pkt_path *p = bpf_map_lookup_elem(&dt_pkt_paths, &key);
	struct dt_pkt_path *empty;

	if (p && kind != DT_STEP_GRO && !dt_path_stale(p, DT_RD(direct, skb, skb_iif), now, kind == DT_STEP_XMIT_QUEUE))
		return p;
	struct dt_rejected *rej = bpf_map_lookup_elem(&dt_rejected, &zero);
	__u32 len = DT_RD(direct, skb, len);
	if (!p && rej && rej->skb == key && rej->len == len && now - rej->ts_ns < DT_REJECTED_NS)
		return NULL;
	if (!dt_path_wanted(skb, kind, direct)) {
		if (p)
			bpf_map_delete_elem(&dt_pkt_paths, &key);
		if (rej) {
			rej->skb = key;
			rej->len = len;
			rej->ts_ns = now;
		}
		return NULL;
	}
	empty = bpf_map_lookup_elem(&dt_no_pkt_path, &zero);
	if (!empty || bpf_map_update_elem(&dt_pkt_paths, &key, empty, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&dt_pkt_paths, &key);
}

/*
 * One step of a device: kind, the device, a detail (a qdisc's handle), the function
 * (DT_STEP_FUNC). Returns whether the skb has a path now.
 */
static __always_inline bool dt_path_add(struct sk_buff *skb, struct net_device *dev, __u8 kind, __u32 detail, __u64 fn,
					bool direct)
{
	__u64 now = bpf_ktime_get_ns();
	struct dt_pkt_path *p;
	struct dt_step *s;

	if (!skb)
		return false;
	p = dt_path_for(skb, kind, now, direct);
	if (!p)
		return false;
	if (!dev)
		dev = DT_RD(direct, skb, dev);
	s = dt_path_next(p);
	s->ts_ns = now;
	s->ifindex = dev ? DT_RD(direct, dev, ifindex) : 0;
	s->netns = dt_dev_netns(dev, direct);
	s->detail = detail;
	s->result = 0;
	s->cpu = bpf_get_smp_processor_id();
	s->kind = kind;
	s->flags = 0;
	s->pad = 0;
	s->fn = fn;
	if (dev)
		bpf_probe_read_kernel(s->ifname, sizeof(s->ifname), dev->name);
	else
		s->ifname[0] = 0;
	/* __netif_receive_skb_core sets skb_iif right after this tracepoint; sending may clear it */
	if (kind == DT_STEP_RX)
		p->received = 1;
	else if (kind == DT_STEP_XMIT)
		p->received = 0;
	return true;
}

/* After a receive step: remember the skb (when it has a path) for the FIB lookups that follow on this CPU. */
static __always_inline void dt_rx_remember(struct sk_buff *skb, bool followed, bool direct)
{
	__u32 zero = 0;
	struct dt_rx_cur *c = bpf_map_lookup_elem(&dt_rx_cur, &zero);
	unsigned char *data;
	__u16 proto;
	__u8 h[40];

	if (!c)
		return;
	c->skb = 0;
	if (!followed)
		return;
	data = DT_RD(direct, skb, data);
	proto = bpf_ntohs(DT_RD(direct, skb, protocol));
	if (proto == ETH_P_IP && !bpf_probe_read_kernel(h, 20, data) && (h[0] >> 4) == 4) {
		c->ipver = 4;
		__builtin_memcpy(c->saddr, h + 12, 4);
		__builtin_memcpy(c->daddr, h + 16, 4);
	} else if (proto == ETH_P_IPV6 && !bpf_probe_read_kernel(h, 40, data) && (h[0] >> 4) == 6) {
		c->ipver = 6;
		__builtin_memcpy(c->saddr, h + 8, 16);
		__builtin_memcpy(c->daddr, h + 24, 16);
	} else {
		return;
	}
	c->ts_ns = bpf_ktime_get_ns();
	c->netns = dt_dev_netns(DT_RD(direct, skb, dev), direct);
	c->skb = (__u64)skb;
}

static __always_inline bool dt_addr_eq(const __u8 *a, const __u8 *b, int n)
{
	for (int i = 0; i < 16; i++) {
		if (i >= n)
			break;
		if (a[i] != b[i])
			return false;
	}
	return true;
}

/*
 * A FIB lookup of (saddr, daddr): a step of the skb this CPU just received when they are its
 * destination (the route decision) or, reversed, its source (rp_filter's check).
 */
static __always_inline void dt_fib_step(__u8 kind, __u8 ipver, const __u8 *saddr, const __u8 *daddr, __u32 table,
					__s32 result, struct net_device *dev, bool direct)
{
	__u32 zero = 0;
	__u64 now = bpf_ktime_get_ns();
	struct dt_rx_cur *c = bpf_map_lookup_elem(&dt_rx_cur, &zero);
	int n = ipver == 4 ? 4 : 16;
	__u8 flags;
	struct dt_pkt_path *p;
	struct dt_step *s;

	if (!c || !c->skb || c->ipver != ipver || now - c->ts_ns > DT_FIB_WINDOW_NS)
		return;
	if (dt_addr_eq(daddr, c->daddr, n))
		flags = 0;
	else if (dt_addr_eq(daddr, c->saddr, n) && dt_addr_eq(saddr, c->daddr, n))
		flags = DT_SF_REVERSE;
	else
		return;
	p = bpf_map_lookup_elem(&dt_pkt_paths, &c->skb);
	if (!p)
		return;
	s = dt_path_next(p);
	if (!s)
		return;
	s->ts_ns = now;
	s->ifindex = dev ? DT_RD(direct, dev, ifindex) : 0;
	s->netns = c->netns;
	s->detail = table;
	s->result = result;
	s->cpu = bpf_get_smp_processor_id();
	s->kind = kind;
	s->flags = flags;
	s->pad = 0;
	s->fn = 0;
	if (dev)
		bpf_probe_read_kernel(s->ifname, sizeof(s->ifname), dev->name);
	else
		s->ifname[0] = 0;
}

/* The drop: the skb's path, or NULL when it has none (or only an earlier skb's). */
static __always_inline struct dt_pkt_path *dt_path_of(struct sk_buff *skb, bool direct)
{
	__u64 key = (__u64)skb;
	struct dt_pkt_path *p = bpf_map_lookup_elem(&dt_pkt_paths, &key);

	if (p && dt_path_stale(p, DT_RD(direct, skb, skb_iif), bpf_ktime_get_ns(), true))
		return NULL;
	return p;
}

/*
 * The route the skb holds at the drop, as its dst's input and output functions: what the
 * routing decided (delivered locally, forwarded, an error or a discard route) whatever table
 * or rule decided it, which the FIB tracepoints alone do not say (with no policy rules the
 * local and main tables are one, and the route's type is not an argument). SKB_DST_NOREF is
 * bit 0 of _skb_refdst.
 */
static __always_inline void dt_path_route(struct sk_buff *skb, struct dt_pkt_path *out)
{
	unsigned long refdst = BPF_CORE_READ(skb, _skb_refdst);
	struct dst_entry *dst = (struct dst_entry *)(refdst & ~1UL);

	out->dst_input = 0;
	out->dst_output = 0;
	if (!dst)
		return;
	out->dst_input = (__u64)BPF_CORE_READ(dst, input);
	out->dst_output = (__u64)BPF_CORE_READ(dst, output);
}

static __always_inline void dt_path_forget(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	__u32 zero = 0;
	struct dt_rejected *rej = bpf_map_lookup_elem(&dt_rejected, &zero);

	bpf_map_delete_elem(&dt_pkt_paths, &key);
	if (rej && rej->skb == key)
		rej->skb = 0;
}

/* ---- the path's tracepoints: each in the two flavours the drop program has ---- */

/* A tracepoint whose argument ARG is the skb; the device is skb->dev. */
#define DT_PATH_SKB_TP(tp, kind, arg)                                                           \
	SEC("tp_btf/" #tp)                                                                      \
	int droptrace_path_##tp(__u64 *ctx)                                                              \
	{                                                                                       \
		dt_path_add((struct sk_buff *)ctx[arg], NULL, kind, 0, 0, true);                   \
		return 0;                                                                       \
	}                                                                                       \
	SEC("raw_tp/" #tp)                                                                      \
	int droptrace_path_raw_##tp(struct bpf_raw_tracepoint_args *ctx)                                    \
	{                                                                                       \
		dt_path_add((struct sk_buff *)ctx->args[arg], NULL, kind, 0, 0, false);            \
		return 0;                                                                       \
	}

DT_PATH_SKB_TP(net_dev_queue, DT_STEP_XMIT_QUEUE, 0)
DT_PATH_SKB_TP(net_dev_start_xmit, DT_STEP_XMIT, 0)
DT_PATH_SKB_TP(netif_rx, DT_STEP_NETIF_RX, 0)
DT_PATH_SKB_TP(napi_gro_receive_entry, DT_STEP_GRO, 0)

/* netif_receive_skb: a step, then the skb the FIB lookups after it belong to. */
SEC("tp_btf/netif_receive_skb")
int droptrace_path_netif_receive_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];

	dt_rx_remember(skb, dt_path_add(skb, NULL, DT_STEP_RX, 0, 0, true), true);
	return 0;
}

SEC("raw_tp/netif_receive_skb")
int droptrace_path_raw_netif_receive_skb(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];

	dt_rx_remember(skb, dt_path_add(skb, NULL, DT_STEP_RX, 0, 0, false), false);
	return 0;
}

/* qdisc_enqueue(qdisc, txq, skb) (5.19+), qdisc_dequeue(qdisc, txq, packets, skb): skb may be NULL */
#define DT_PATH_QDISC_TP(tp, kind, arg)                                                         \
	SEC("tp_btf/" #tp)                                                                      \
	int droptrace_path_##tp(__u64 *ctx)                                                              \
	{                                                                                       \
		struct Qdisc *q = (struct Qdisc *)ctx[0];                                       \
		dt_path_add((struct sk_buff *)ctx[arg], NULL, kind, q ? q->handle : 0, 0, true);   \
		return 0;                                                                       \
	}                                                                                       \
	SEC("raw_tp/" #tp)                                                                      \
	int droptrace_path_raw_##tp(struct bpf_raw_tracepoint_args *ctx)                                    \
	{                                                                                       \
		struct Qdisc *q = (struct Qdisc *)ctx->args[0];                                 \
		dt_path_add((struct sk_buff *)ctx->args[arg], NULL, kind, BPF_CORE_READ(q, handle), 0, false); \
		return 0;                                                                       \
	}

DT_PATH_QDISC_TP(qdisc_enqueue, DT_STEP_QDISC_ENQ, 2)
DT_PATH_QDISC_TP(qdisc_dequeue, DT_STEP_QDISC_DEQ, 3)

/* fib_table_lookup(tb_id, flp, nhc, err): the nexthop's device only when one was chosen */
static __always_inline void dt_fib4(__u32 table, struct flowi4 *flp, struct fib_nh_common *nhc, int err, bool direct)
{
	__u8 s[4], d[4];

	if (err == -11 /* EAGAIN: this table has no route, the next one is asked */ || !flp)
		return;
	if (bpf_probe_read_kernel(s, 4, &flp->saddr) || bpf_probe_read_kernel(d, 4, &flp->daddr))
		return;
	dt_fib_step(DT_STEP_FIB, 4, s, d, table, err, nhc ? DT_RD(direct, nhc, nhc_dev) : NULL, direct);
}

SEC("tp_btf/fib_table_lookup")
int droptrace_path_fib_table_lookup(__u64 *ctx)
{
	dt_fib4((__u32)ctx[0], (struct flowi4 *)ctx[1], (struct fib_nh_common *)ctx[2], (int)ctx[3], true);
	return 0;
}

SEC("raw_tp/fib_table_lookup")
int droptrace_path_raw_fib_table_lookup(struct bpf_raw_tracepoint_args *ctx)
{
	dt_fib4((__u32)ctx->args[0], (struct flowi4 *)ctx->args[1], (struct fib_nh_common *)ctx->args[2],
		(int)ctx->args[3], false);
	return 0;
}

/* fib6_table_lookup(net, res, table, flp): the route's type is in the result */
static __always_inline void dt_fib6(struct fib6_result *res, struct fib6_table *table, struct flowi6 *flp, bool direct)
{
	__u8 s[16], d[16];
	struct fib6_nh *nh;

	if (!res || !flp)
		return;
	if (bpf_probe_read_kernel(s, 16, &flp->saddr) || bpf_probe_read_kernel(d, 16, &flp->daddr))
		return;
	nh = DT_RD(direct, res, nh);
	dt_fib_step(DT_STEP_FIB6, 6, s, d, table ? DT_RD(direct, table, tb6_id) : 0, DT_RD(direct, res, fib6_type),
		    nh ? DT_RD(direct, nh, nh_common.nhc_dev) : NULL, direct);
}

SEC("tp_btf/fib6_table_lookup")
int droptrace_path_fib6_table_lookup(__u64 *ctx)
{
	dt_fib6((struct fib6_result *)ctx[1], (struct fib6_table *)ctx[2], (struct flowi6 *)ctx[3], true);
	return 0;
}

SEC("raw_tp/fib6_table_lookup")
int droptrace_path_raw_fib6_table_lookup(struct bpf_raw_tracepoint_args *ctx)
{
	dt_fib6((struct fib6_result *)ctx->args[1], (struct fib6_table *)ctx->args[2], (struct flowi6 *)ctx->args[3],
		false);
	return 0;
}

/* consume_skb: a packet that was not dropped; its path ends here */
SEC("tp_btf/consume_skb")
int droptrace_path_consume_skb(__u64 *ctx)
{
	dt_path_forget((struct sk_buff *)ctx[0]);
	return 0;
}

SEC("raw_tp/consume_skb")
int droptrace_path_raw_consume_skb(struct bpf_raw_tracepoint_args *ctx)
{
	dt_path_forget((struct sk_buff *)ctx->args[0]);
	return 0;
}

/*
 * --path functions: every kernel function with a struct sk_buff * among its first five
 * parameters, one program per position (the loader picks the functions from BTF, as pwru does,
 * and attaches each list to its program): kprobe-multi (droptrace_path_fnN), or, on kernels
 * with kprobes but no kprobe-multi (Debian's 6.1 is built without CONFIG_FPROBE), the same body
 * as a plain kprobe attached once per function (droptrace_path_kpN; bpf_get_func_ip in a kprobe
 * needs 5.15, the loader checks). A function's step joins or starts the skb's path like a
 * tracepoint's; the address is resolved to its name in user space.
 */
#define DT_PATH_FUNC_PROG(sec, name, n)                                                         \
	SEC(sec)                                                                                \
	int name(struct pt_regs *ctx)                                                           \
	{                                                                                       \
		dt_path_add((struct sk_buff *)PT_REGS_PARM##n(ctx), NULL, DT_STEP_FUNC, 0,      \
			    bpf_get_func_ip(ctx), false);                                       \
		return 0;                                                                       \
	}
#define DT_PATH_FUNC_PROGS(n)                                                                   \
	DT_PATH_FUNC_PROG("kprobe.multi", droptrace_path_fn##n, n)                              \
	DT_PATH_FUNC_PROG("kprobe", droptrace_path_kp##n, n)

DT_PATH_FUNC_PROGS(1)
DT_PATH_FUNC_PROGS(2)
DT_PATH_FUNC_PROGS(3)
DT_PATH_FUNC_PROGS(4)
DT_PATH_FUNC_PROGS(5)

#endif /* DROPTRACE_PKT_PATH_BPF_H */
