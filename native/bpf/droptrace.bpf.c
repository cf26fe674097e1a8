// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * droptrace: one program per attach path (tp_btf, raw_tp, fentry, kprobe),
 * all funnelling into dt_handle(). The loader enables exactly one of them
 * with bpf_program__set_autoload() and configures the const volatile
 * filters below before load, so the verifier removes every filter that is off.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "droptrace.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58

/* ---- what the user asked for: struct dt_settings (droptrace.h), written whole by the loader;
 * what the loader probed in the kernel is in core_fixes.bpf.h ---- */
const volatile struct dt_settings CFG = {};

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20); /* resized by the loader */
} dt_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* resized by the loader */
	__type(key, struct dt_count_key);
	__type(value, struct dt_count_val);
} dt_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_HOT_SLOTS);
	__type(key, __u32);
	__type(value, struct dt_count_rec);
} dt_hot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1); /* resized by the loader when --stack is on */
	__type(key, __u32);
	__uint(value_size, DT_STACK_DEPTH * sizeof(__u64));
} dt_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dt_stats SEC(".maps");

/* qdisc:qdisc_drop's reason per skb, until the skb is freed (targ_qdisc_drop_reason). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1); /* resized by the loader where the kernel has the tracepoint */
	__type(key, __u64);
	__type(value, __u32);
} dt_qdisc_reasons SEC(".maps");

/*
 * Set by the reader (through the mmapped .bss) just before it sleeps, cleared
 * by the one drop that wakes it: one wakeup per batch, however far behind it
 * is, or for the first record into an empty ring (an idle reader sleeps
 * without a timeout).
 */
__u32 dt_reader_armed = 0;

static __always_inline void dt_stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&dt_stats, &idx);
	if (v)
		(*v)++; /* per-CPU slot: no atomic needed */
}

/* One IP flow's headers: the packet's own, or the inner one of a tunnelled packet. */
struct dt_flow {
	__u8 ipver;
	__u8 l4proto;
	__u8 l4ok;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Headers of the packet, read once and shared by filters and the event. */
struct dt_pkt {
	struct dt_flow o;  /* outer: the packet as the dropping device had it */
	struct dt_flow in; /* inner flow of a VXLAN or Geneve packet (tunnel != DT_TUN_NONE) */
	__u8 tunnel;       /* DT_TUN_* */
	__u8 inner_flags;  /* DT_IF_* */
	__u32 vni;
};

/* TCP ports and flags, UDP ports, or ICMP type/code, from the first bytes of an L4 header. */
static __always_inline void dt_l4(struct dt_flow *p, const __u8 *l4)
{
	if (p->l4proto == IPPROTO_TCP_ || p->l4proto == IPPROTO_UDP_) {
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		if (p->l4proto == IPPROTO_TCP_)
			p->tcp_flags = l4[13];
		p->l4ok = 1;
	} else if (p->l4proto == IPPROTO_ICMP_ || p->l4proto == IPPROTO_ICMPV6_) {
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		p->l4ok = 1;
	}
}

/*
 * IPv6 extension headers walked to the upper-layer protocol: hop-by-hop (0), routing (43),
 * fragment (44) and destination options (60), at most this many (the verifier needs a
 * bound; real packets carry one or two). Each is (hdr_ext_len + 1) * 8 bytes long, the
 * fragment header too (its length byte is reserved, 0); AH (51) ends the walk and is shown
 * as the protocol. One membership test and one length formula keep the verifier's paths
 * linear in the headers walked.
 */
#define DT_V6_EXT_MAX 4
#define DT_V6_EXT_MASK ((1ULL << 0) | (1ULL << 43) | (1ULL << 44) | (1ULL << 60))

static __always_inline bool dt_v6_ext(__u8 next)
{
	return next < 64 && ((DT_V6_EXT_MASK >> next) & 1);
}

/*
 * The IP header at head + nh and the start of its L4 header. One helper call reads both
 * (56 bytes: IPv6 40 + TCP 14); IPv4 options and IPv6 extension headers need more reads.
 * Returns the L4 header's offset from head, or 0 when there is none to read (a later
 * fragment, an unreadable header). Long because the extension-header walk is unrolled in place:
 * split into helpers it costs the verifier paths the walk was shaped to avoid (DESIGN.md).
 */
static __always_inline __u32 dt_parse_ip(const unsigned char *head, __u32 nh, __u16 ethertype, struct dt_flow *p)
{
	__u8 h[56];
	__u8 v, ihl;

	if (ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 && ethertype != 0)
		return 0;
	if (bpf_probe_read_kernel(h, sizeof(h), head + nh)) {
		/* the packet ends right before unmapped memory: read the IPv4 header alone */
		if (bpf_probe_read_kernel(h, 20, head + nh))
			return 0;
		__builtin_memset(h + 20, 0, sizeof(h) - 20);
	}
	v = h[0] >> 4;
	ihl = h[0] & 0xf;

	if ((ethertype == ETH_P_IP || ethertype == 0) && v == 4 && ihl >= 5) {
		p->ipver = 4;
		p->l4proto = h[9];
		__builtin_memcpy(p->saddr, h + 12, 4);
		__builtin_memcpy(p->daddr, h + 16, 4);
		if (((h[6] & 0x1f) | h[7]) != 0)
			return 0; /* not the first fragment: no L4 header here */
		if (ihl == 5) {
			dt_l4(p, h + 20);
		} else {
			__u8 l4[14];
			if (bpf_probe_read_kernel(l4, sizeof(l4), head + nh + ihl * 4))
				return 0;
			dt_l4(p, l4);
		}
		return nh + ihl * 4;
	}
	if ((ethertype == ETH_P_IPV6 || ethertype == 0) && v == 6) {
		__u8 next = h[6];
		__u32 off = nh + 40;

		p->ipver = 6;
		__builtin_memcpy(p->saddr, h + 8, 16);
		__builtin_memcpy(p->daddr, h + 24, 16);
#pragma unroll
		for (int i = 0; i < DT_V6_EXT_MAX; i++) {
			__u8 eh[4];

			if (!dt_v6_ext(next))
				break;
			if (bpf_probe_read_kernel(eh, sizeof(eh), head + off)) {
				p->l4proto = next;
				return 0;
			}
			/* a fragment header with an offset: a later fragment carries no L4 header */
			if (next == 44 && ((((__u16)eh[2] << 8) | eh[3]) & 0xfff8)) {
				p->l4proto = eh[0];
				return 0;
			}
			next = eh[0];
			off += ((__u32)eh[1] + 1) * 8;
		}
		p->l4proto = next;
		if (dt_v6_ext(next))
			return 0; /* more extension headers than we walk */
		if (off == nh + 40) {
			dt_l4(p, h + 40);
		} else {
			__u8 l4[14];
			if (bpf_probe_read_kernel(l4, sizeof(l4), head + off))
				return 0;
			dt_l4(p, l4);
		}
		return off;
	}
	return 0;
}

static __always_inline bool dt_port_in(const volatile __u16 *ports, __u16 port)
{
#pragma unroll
	for (int i = 0; i < DT_TUN_PORTS; i++)
		if (ports[i] && ports[i] == port)
			return true;
	return false;
}

/*
 * The inner flow of a VXLAN or Geneve packet whose UDP header is at head + udp: tunnel
 * header, inner Ethernet (one VLAN tag skipped) or, for Geneve, a bare IP payload, then the
 * inner IP and L4 headers. Only the linear data (up to skb->tail) is read: headers the
 * device left in page fragments are flagged DT_IF_NOT_LINEAR, not guessed from other memory.
 */
static __always_inline void dt_parse_tunnel(const unsigned char *head, __u32 udp, __u32 tail, struct dt_pkt *p)
{
	__u8 t[16]; /* UDP header, then the 8-byte VXLAN or Geneve base header */
	__u8 kind;
	__u32 off = udp + 16;
	__u16 proto = 0x6558; /* transparent Ethernet bridging */

	if (dt_port_in(CFG.vxlan_ports, p->o.dport))
		kind = DT_TUN_VXLAN;
	else if (dt_port_in(CFG.geneve_ports, p->o.dport))
		kind = DT_TUN_GENEVE;
	else
		return;
	if (udp + 16 > tail || bpf_probe_read_kernel(t, sizeof(t), head + udp))
		return;
	if (kind == DT_TUN_VXLAN) {
		if (!(t[8] & 0x08))
			return; /* no valid VNI: not VXLAN */
	} else {
		if (t[8] >> 6)
			return; /* Geneve version 0 only */
		off += (t[8] & 0x3f) * 4;
		proto = ((__u16)t[10] << 8) | t[11];
	}
	p->tunnel = kind;
	p->vni = ((__u32)t[12] << 16) | ((__u32)t[13] << 8) | t[14];
	if (proto == 0x6558) {
		__u8 eth[18];
		if (off + 14 > tail || bpf_probe_read_kernel(eth, sizeof(eth), head + off)) {
			p->inner_flags |= DT_IF_NOT_LINEAR;
			return;
		}
		proto = ((__u16)eth[12] << 8) | eth[13];
		off += 14;
		if (proto == 0x8100 || proto == 0x88a8) {
			proto = ((__u16)eth[16] << 8) | eth[17];
			off += 4;
		}
	}
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return;
	if (off + (proto == ETH_P_IP ? 20 : 40) > tail) {
		p->inner_flags |= DT_IF_NOT_LINEAR;
		return;
	}
	dt_parse_ip(head, off, proto, &p->in);
	if (p->in.ipver)
		p->inner_flags |= DT_IF_L3;
	if (p->in.l4ok)
		p->inner_flags |= DT_IF_L4;
}

/*
 * The packet's headers, its IP header at head + nh: skb->network_header where the stack set
 * it (the drop, transmit), skb->data - skb->head where a driver has just pulled the Ethernet
 * header (the receive tracepoints of --path). ~0: no header to read.
 */
static __always_inline void dt_parse(struct sk_buff *skb, __u16 ethertype, __u16 nh, struct dt_pkt *p, bool direct)
{
	unsigned char *head = DT_RD(direct, skb, head);
	__u32 l4;

	if (nh == (__u16)~0U)
		return;
	l4 = dt_parse_ip(head, nh, ethertype, &p->o);
	if (l4 && p->o.l4ok && p->o.l4proto == IPPROTO_UDP_)
		dt_parse_tunnel(head, l4, DT_RD(direct, skb, tail), p);
}

static __always_inline bool dt_reason_in(const volatile __u64 *set, const volatile __u32 *hi, __u32 reason)
{
	__u32 idx;

	if (reason >= 256) {
		/* subsystem reasons (OVS, mac80211: subsystem << 16 | code): a short list */
#pragma unroll
		for (int i = 0; i < DT_REASON_HI; i++)
			if (hi[i] && hi[i] == reason)
				return true;
		return false;
	}
	/*
	 * clang tests a zero-extended copy of reason and indexes with another, so the
	 * verifier cannot see the bound: hide the value behind an empty asm, then mask.
	 */
	idx = reason >> 6;
	asm volatile("" : "+r"(idx));
	return (set[idx & 3] >> (reason & 63)) & 1;
}

static __always_inline bool dt_host_match(const __u8 *a)
{
	int i;
	for (i = 0; i < 16; i++) {
		if (CFG.host_ver == 4 && i >= 4)
			break;
		if ((a[i] & CFG.host_mask[i]) != CFG.host_addr[i])
			return false;
	}
	return true;
}

/* Which dt_hot slot a key may claim: a multiplicative hash of the key's words. */
static __always_inline __u32 dt_hot_slot(const struct dt_count_key *key)
{
	__u64 h = key->location ^ ((__u64)key->reason << 32) ^ ((__u64)key->ifindex << 16) ^ key->netns;
	return (__u32)((h * 0x9E3779B97F4A7C15ULL) >> 56) & CFG.hot_mask & (DT_HOT_SLOTS - 1);
}

/*
 * Exact count of one drop. The hot array first: an inlined array lookup and
 * a compare cost ~45 ns less per drop than the hash update (kernel BPF stats,
 * closed-port flood: 213-238 -> 173-180 ns per drop for the whole program).
 * Only a drop on this CPU touches this CPU's slot, and the program never runs
 * nested on one CPU (the kernel skips recursive runs), so no atomics are
 * needed except to publish a claim.
 */
static __always_inline void dt_count(struct dt_count_key *key, __u32 len)
{
	__u32 slot = dt_hot_slot(key);
	struct dt_count_rec *h = CFG.hot && key->location ? bpf_map_lookup_elem(&dt_hot, &slot) : NULL;

	if (h) {
		if (h->key.location == key->location && h->key.reason == key->reason &&
		    h->key.ifindex == key->ifindex && h->key.netns == key->netns) {
			h->val.packets++;
			h->val.bytes += len;
			return;
		}
		if (!h->key.location) {
			/*
			 * claim: the rest of the key, then location, then the counts. location is
			 * published with an atomic add onto its 0 (its result unused: the plain
			 * BPF_XADD every kernel accepts; an exchange is BPF_XCHG, which the 5.10
			 * verifier rejects as "BPF_STX uses reserved fields"). On x86 it is a
			 * locked instruction, a full barrier; arm64 was not run (docs/DESIGN.md).
			 */
			h->key.reason = key->reason;
			h->key.ifindex = key->ifindex;
			h->key.netns = key->netns;
			h->key.pad = 0;
			asm volatile("" ::: "memory");
			__sync_fetch_and_add(&h->key.location, key->location);
			h->val.bytes = len;
			asm volatile("" ::: "memory");
			h->val.packets = 1;
			return;
		}
	}

	struct dt_count_val *v = bpf_map_lookup_elem(&dt_counts, key);
	if (v) {
		v->packets++;
		v->bytes += len;
		return;
	}
	struct dt_count_val init = { .packets = 1, .bytes = len };
	long err = bpf_map_update_elem(&dt_counts, key, &init, BPF_NOEXIST);
	if (err == -17 /* EEXIST: raced with ourselves on this CPU via a nested drop */) {
		v = bpf_map_lookup_elem(&dt_counts, key);
		if (v) {
			v->packets++;
			v->bytes += len;
		}
	} else if (err) {
		dt_stat_inc(DT_STAT_MAP_FULL);
	}
}

/*
 * Copies the first CFG.snaplen bytes of the packet after the event: from
 * the Ethernet header when the device has one and it is set, else from the
 * IP header. cap_len says how many of them are packet (the rest is zero).
 */
static __always_inline void dt_capture(struct sk_buff *skb, struct net_device *dev, struct dt_event *e, bool direct)
{
	unsigned char *head = DT_RD(direct, skb, head);
	__u16 mh = DT_RD(direct, skb, mac_header);
	__u16 nh = DT_RD(direct, skb, network_header);
	__u32 tail = DT_RD(direct, skb, tail);
	__u16 type = dev ? DT_RD(direct, dev, type) : 0;
	__u32 start, avail, cap;

	/* ARPHRD_ETHER 1, ARPHRD_LOOPBACK 772: both carry an Ethernet header */
	if (mh != (__u16)~0U && nh != (__u16)~0U && nh == mh + 14 && (type == 1 || type == 772)) {
		start = mh;
		e->cap_from = DT_CAP_MAC;
	} else if (nh != (__u16)~0U && e->ipver) {
		start = nh;
		e->cap_from = DT_CAP_NETWORK;
	} else {
		return;
	}
	avail = tail > start ? tail - start : 0;
	e->orig_len = DT_RD(direct, skb, len) + (DT_RD(direct, skb, data) - head) - start;
	cap = avail < CFG.snaplen ? avail : CFG.snaplen;
	cap &= DT_MAX_SNAPLEN * 2 - 1; /* a bound the verifier can see */
	if (cap > DT_MAX_SNAPLEN)
		cap = DT_MAX_SNAPLEN;
	if (cap && !bpf_probe_read_kernel((void *)(e + 1), cap, head + start))
		e->cap_len = cap;
}

/* Whether a drop with this reason is traced: not a consume, and through the reason filters. */
static __always_inline bool dt_reason_wanted(__u32 reason, bool has_reason)
{
	if (has_reason && targ_consumed_reason >= 0 && reason == (__u32)targ_consumed_reason)
		return false;
	if (CFG.has_include && !dt_reason_in(CFG.include, CFG.include_hi, reason))
		return false;
	if (CFG.has_exclude && dt_reason_in(CFG.exclude, CFG.exclude_hi, reason))
		return false;
	return true;
}

/* Where a drop happened: the device, and its netns (else the skb's socket's, else the receiving socket's). */
struct dt_where {
	struct net_device *dev;
	__u32 netns;
	__u16 ethertype;
	bool from_sk;
};

/* The interface filter (--iface) on a device: its name now. */
static __always_inline bool dt_ifname_wanted(struct net_device *dev)
{
	char name[DT_IFNAMSIZ] = {};
	int i;

	if (!CFG.has_ifname)
		return true;
	if (!dev)
		return false;
	bpf_probe_read_kernel(name, sizeof(name), dev->name);
	for (i = 0; i < DT_IFNAMSIZ; i++) {
		if (name[i] != CFG.ifname[i])
			return false;
		if (!name[i])
			break;
	}
	return true;
}

/*
 * Fills w and applies the namespace, interface and ethertype filters. tcp_v4_rcv clears
 * skb->dev once it has found the socket, and a received skb has no skb->sk: for TCP's drops
 * from then on (tcp_v4_do_rcv, tcp_rcv_state_process) the receiving socket is the only thing
 * that knows the namespace, and without it --netns would miss a pod's own TCP drops.
 */
static __always_inline bool dt_where_wanted(struct sk_buff *skb, struct sock *rx_sk, struct dt_where *w, bool direct)
{
	w->dev = DT_RD(direct, skb, dev);
	w->netns = dt_dev_netns(w->dev, direct);
	w->from_sk = false;
	if (!w->netns) {
		w->netns = dt_sk_netns(DT_RD(direct, skb, sk), direct);
		if (!w->netns)
			w->netns = dt_sk_netns(rx_sk, direct);
		w->from_sk = w->netns != 0;
	}
	if (CFG.netns && w->netns != CFG.netns)
		return false;

	if (!dt_ifname_wanted(w->dev))
		return false;

	w->ethertype = bpf_ntohs(DT_RD(direct, skb, protocol));
	return !CFG.ethertype || w->ethertype == CFG.ethertype;
}

/* The protocol, host and port filters on one flow's headers. */
static __always_inline bool dt_flow_wanted(const struct dt_flow *f)
{
	if (CFG.l4proto && f->l4proto != CFG.l4proto)
		return false;
	if (CFG.host_ver) {
		if (f->ipver != CFG.host_ver)
			return false;
		if (!dt_host_match(f->saddr) && !dt_host_match(f->daddr))
			return false;
	}
	if (CFG.port) {
		if (!f->l4ok || (f->sport != CFG.port && f->dport != CFG.port) ||
		    (f->l4proto != IPPROTO_TCP_ && f->l4proto != IPPROTO_UDP_))
			return false;
	}
	return true;
}

/* A tunnelled packet is wanted when its outer or its inner flow matches all the filters. */
static __always_inline bool dt_pkt_wanted(const struct dt_pkt *pkt)
{
	if (!CFG.l4proto && !CFG.host_ver && !CFG.port)
		return true;
	return dt_flow_wanted(&pkt->o) || ((pkt->inner_flags & DT_IF_L3) && dt_flow_wanted(&pkt->in));
}

#include "pkt_path.bpf.h"
#include "traps.bpf.h"

/* With --sample N, true for all but every Nth of this CPU's drops (those are only counted). */
static __always_inline bool dt_sampled_out(void)
{
	if (CFG.sample > 1) {
		__u32 idx = DT_STAT_SEEN;
		__u64 *seen = bpf_map_lookup_elem(&dt_stats, &idx);
		if (!seen)
			return true;
		if ((*seen)++ % CFG.sample) {
			dt_stat_inc(DT_STAT_SAMPLED);
			return true;
		}
		return false;
	}
	dt_stat_inc(DT_STAT_SEEN);
	return false;
}

/*
 * Who the receiving socket is (the tracepoint's rx_sk, NULL for most drops): its cgroup, inode,
 * owner and local address, so a full receive buffer names the pod that did not read, not only
 * the port. Read only for events, never for counting; every pointer is checked, since rx_sk is
 * NULL whenever no socket was involved (and tp_btf's verifier on 6.11-6.12 does not say so).
 */
static __always_inline void dt_rx_sk(struct sock *sk, struct dt_event *e, bool direct)
{
	e->sk_cgroup = 0;
	e->sk_ino = 0;
	e->sk_uid = 0;
	__builtin_memset(e->sk_addr, 0, sizeof(e->sk_addr));
	e->sk_port = 0;
	e->sk_family = 0;
	e->sk_protocol = 0;
	e->pad3 = 0;
	if (!sk)
		return;
	e->sk_cgroup = dt_sk_cgroup(sk, direct);
	e->sk_uid = DT_RD(direct, sk, sk_uid.val);
	e->sk_family = DT_RD(direct, sk, __sk_common.skc_family);
	e->sk_protocol = DT_RD(direct, sk, sk_protocol);
	e->sk_port = DT_RD(direct, sk, __sk_common.skc_num);
	if (e->sk_family == 2 /* AF_INET */) {
		__u32 a = DT_RD(direct, sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->sk_addr, &a, 4);
	} else if (e->sk_family == 10 /* AF_INET6 */ && bpf_core_field_exists(sk->__sk_common.skc_v6_rcv_saddr)) {
		bpf_probe_read_kernel(e->sk_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	struct socket *so = DT_RD(direct, sk, sk_socket);
	if (so) {
		struct file *f = DT_RD(direct, so, file);
		if (f) {
			struct inode *ino = DT_RD(direct, f, f_inode);
			if (ino)
				e->sk_ino = DT_RD(direct, ino, i_ino);
		}
	}
}

/*
 * Sends one event: the drop, its headers, optionally its stack and packet bytes. Long because it
 * is one reserve-fill-submit: every field is written into the reserved record in place (a
 * helper taking the record would copy or re-check it), and the wakeup decision needs the
 * record's size and the ring's state together.
 */
static __always_inline void dt_emit(void *ctx, struct sk_buff *skb, struct sock *rx_sk, const struct dt_where *w,
				    const struct dt_pkt *pkt, const struct dt_count_key *key, __u32 len, bool has_reason,
				    bool direct)
{
	__u32 size = sizeof(struct dt_event) + CFG.snaplen;
	if (CFG.pkt_path) {
		/* the empty asm keeps this a branch, which the verifier removes without --path;
		 * clang would otherwise compute it branch-free, and it would stay */
		asm volatile("");
		size += sizeof(struct dt_pkt_path);
	}
	struct dt_event *e = bpf_ringbuf_reserve(&dt_events, size, 0);
	if (!e) {
		dt_stat_inc(DT_STAT_RB_LOST);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->location = key->location;
	e->reason = key->reason;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->len = len;
	e->ifindex = key->ifindex;
	e->iif = DT_RD(direct, skb, skb_iif);
	e->netns = key->netns;
	e->mark = DT_RD(direct, skb, mark);
	e->ethertype = w->ethertype;
	e->l4proto = pkt->o.l4proto;
	e->ipver = pkt->o.ipver;
	e->sport = pkt->o.sport;
	e->dport = pkt->o.dport;
	e->tcp_flags = pkt->o.tcp_flags;
	e->icmp_type = pkt->o.icmp_type;
	e->icmp_code = pkt->o.icmp_code;
	e->flags = (pkt->o.ipver ? DT_F_L3 : 0) | (pkt->o.l4ok ? DT_F_L4 : 0) |
		   (has_reason ? DT_F_REASON : 0) | (w->from_sk ? DT_F_SK : 0) | (CFG.pkt_path ? DT_F_PATH : 0) |
		   (rx_sk ? DT_F_RX_SK : 0);
	__builtin_memcpy(e->saddr, pkt->o.saddr, 16);
	__builtin_memcpy(e->daddr, pkt->o.daddr, 16);
	__builtin_memcpy(e->inner_saddr, pkt->in.saddr, 16);
	__builtin_memcpy(e->inner_daddr, pkt->in.daddr, 16);
	e->tunnel_id = pkt->vni;
	e->inner_sport = pkt->in.sport;
	e->inner_dport = pkt->in.dport;
	e->tunnel = pkt->tunnel;
	e->inner_ipver = pkt->in.ipver;
	e->inner_l4proto = pkt->in.l4proto;
	e->inner_flags = pkt->inner_flags;
	e->inner_icmp_type = pkt->in.icmp_type;
	e->inner_icmp_code = pkt->in.icmp_code;
	e->inner_tcp_flags = pkt->in.tcp_flags;
	e->pad2 = 0;
	dt_rx_sk(rx_sk, e, direct);
	if (w->dev)
		bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), w->dev->name);
	else
		e->ifname[0] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->stack_id = -1;
	if (CFG.stack) {
		e->stack_id = bpf_get_stackid(ctx, &dt_stacks, 0);
		if (e->stack_id < 0)
			dt_stat_inc(DT_STAT_STACK_FAIL);
	}
	e->cap_len = 0;
	e->cap_from = DT_CAP_NONE;
	e->pad1 = 0;
	e->orig_len = 0;
	if (CFG.snaplen) {
		/* ring-buffer memory is not zeroed: clear what the copy may not fill */
		__builtin_memset((void *)(e + 1), 0, 8);
		dt_capture(skb, w->dev, e, direct);
	}
	if (CFG.pkt_path) {
		/* the skb's path, or the zeroes of none: ring memory is not zeroed */
		__u32 zero = 0;
		const struct dt_pkt_path *path = dt_path_of(skb, direct);
		if (!path)
			path = bpf_map_lookup_elem(&dt_no_pkt_path, &zero);
		struct dt_pkt_path *out = (void *)(e + 1) + CFG.snaplen;
		if (!path || bpf_probe_read_kernel(out, sizeof(*out), path))
			__builtin_memset(out, 0, 24);
		dt_path_route(skb, out);
	}

	/*
	 * Wake the reader only when it asked (armed) and either a batch has built
	 * up or this record is the first in an empty ring (an idle reader waits
	 * for it); a lone drop after that arrives within the reader's 50 ms
	 * gather. One wakeup per event is what makes per-event printers cost the
	 * kernel 85%.
	 */
	__u64 flags = 0;
	if (CFG.wakeup_bytes) {
		flags = BPF_RB_NO_WAKEUP;
		if (dt_reader_armed) {
			/* queued bytes, this record included: header and padding to 8 */
			__u64 avail = bpf_ringbuf_query(&dt_events, BPF_RB_AVAIL_DATA);
			__u64 mine = (size + 8 + 7) & ~7ULL;

			if (avail >= CFG.wakeup_bytes || avail <= mine) {
				dt_reader_armed = 0;
				flags = BPF_RB_FORCE_WAKEUP;
			}
		}
	}
	bpf_ringbuf_submit(e, flags);
}

/*
 * What each stage costs per run, unfiltered, from scripts/bench.mjs's stage modes
 * (docs/PERFORMANCE.md, "The event path, stage by stage"; closed-port / netfilter floods):
 *   count (reason, device, netns, hot slot)   47 / 49 ns
 *   + header parse                            81 / 83 ns
 *   + the event (reserve, fill, submit)      225 / 185 ns
 *   + the tunnel check                       203 / 186 ns (within the noise)
 * and of the event, from builds with one part taken out (same page): the ring reserve ~45 ns,
 * bpf_ktime_get_ns 30-60 (kvm-clock), filling 224 bytes of uncached ring memory and the submit
 * ~55-65, bpf_get_current_comm and the name's probe read within the noise each. An event per
 * drop stays 2-3x counting: a prototype with per-CPU batches of 8 and jiffies for the clock was
 * still 1.8-2.2x, and reached 1.5x only without comm, the name and the socket's fields.
 * Every attach path ends here: filter, count exactly, then maybe send an
 * event. Each helper is inlined with `direct` a constant, so the verifier
 * sees one straight program per path and drops every filter that is off.
 */
static __always_inline int dt_handle_drop(void *ctx, struct sk_buff *skb, struct sock *rx_sk, __u64 location,
					  __u32 reason, bool has_reason, bool direct)
{
	struct dt_where w = {};
	struct dt_pkt pkt = {};

	if (!skb || !dt_reason_wanted(reason, has_reason))
		return 0;
	if (!dt_where_wanted(skb, rx_sk, &w, direct))
		return 0;
	/* parse only when a filter or the event needs the headers */
	if (CFG.emit_events || CFG.l4proto || CFG.host_ver || CFG.port)
		dt_parse(skb, w.ethertype, DT_RD(direct, skb, network_header), &pkt, direct);
	if (!dt_pkt_wanted(&pkt))
		return 0;

	/* a local pointer: DT_RD on w.dev would ask CO-RE to relocate our own struct */
	struct net_device *dev = w.dev;
	__u32 len = DT_RD(direct, skb, len);
	struct dt_count_key key = {
		.location = location,
		.reason = reason,
		.ifindex = dev ? DT_RD(direct, dev, ifindex) : 0,
		.netns = w.netns,
	};
	dt_count(&key, len);
	/* counting only: the count map is the whole answer */
	if (!CFG.emit_events || dt_sampled_out())
		return 0;
	dt_emit(ctx, skb, rx_sk, &w, &pkt, &key, len, has_reason, direct);
	return 0;
}

/*
 * The reason a qdisc gave for this skb (qdisc:qdisc_drop, 7.x+) when the free says only
 * QDISC_DROP: the specific limit (QDISC_DROP_OVERLIMIT, ..._FLOW_LIMIT, ...) is what the drop
 * is counted and shown under. Read before any filter, so --reason can name it.
 */
static __always_inline __u32 dt_qdisc_reason(struct sk_buff *skb, __u32 reason, bool has_reason)
{
	if (targ_qdisc_drop_reason < 0 || !has_reason || reason != (__u32)targ_qdisc_drop_reason)
		return reason;
	__u64 key = (__u64)skb;
	__u32 *q = bpf_map_lookup_elem(&dt_qdisc_reasons, &key);
	if (!q)
		return reason;
	reason = *q;
	bpf_map_delete_elem(&dt_qdisc_reasons, &key);
	return reason;
}

/* Every free the drop tracepoint sees ends the skb's path (--path), whatever the filters decide. */
static __always_inline int dt_handle(void *ctx, struct sk_buff *skb, struct sock *rx_sk, __u64 location, __u32 reason,
				     bool has_reason, bool direct)
{
	if (skb)
		reason = dt_qdisc_reason(skb, reason, has_reason);
	dt_handle_drop(ctx, skb, rx_sk, location, reason, has_reason, direct);
	if (CFG.pkt_path && skb)
		dt_path_forget(skb);
	return 0;
}

/* ---- qdisc:qdisc_drop (7.x+): the qdisc's own reason, kept for the free that follows ---- */

static __always_inline int dt_qdisc_drop(struct sk_buff *skb, __u32 reason)
{
	__u64 key = (__u64)skb;

	if (skb && reason)
		bpf_map_update_elem(&dt_qdisc_reasons, &key, &reason, BPF_ANY);
	return 0;
}

SEC("tp_btf/qdisc_drop")
int droptrace_qdisc_drop(__u64 *ctx)
{
	return dt_qdisc_drop((struct sk_buff *)ctx[3], (__u32)ctx[4]);
}

SEC("raw_tp/qdisc_drop")
int droptrace_qdisc_drop_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return dt_qdisc_drop((struct sk_buff *)ctx->args[3], (__u32)ctx->args[4]);
}

/* ---- attach paths ---- */

SEC("tp_btf/kfree_skb")
int droptrace_tp(__u64 *ctx)
{
	__u32 reason = 0;
	struct sock *rx_sk = NULL;
	if (targ_tp_has_reason)
		reason = (__u32)ctx[2];
	if (targ_tp_has_rx_sk)
		rx_sk = (struct sock *)ctx[3];
	return dt_handle(ctx, (struct sk_buff *)ctx[0], rx_sk, ctx[1], reason, targ_tp_has_reason, true);
}

SEC("raw_tp/kfree_skb")
int droptrace_raw(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 reason = 0;
	struct sock *rx_sk = NULL;
	if (targ_tp_has_reason)
		reason = (__u32)ctx->args[2];
	if (targ_tp_has_rx_sk)
		rx_sk = (struct sock *)ctx->args[3];
	return dt_handle(ctx, (struct sk_buff *)ctx->args[0], rx_sk, ctx->args[1], reason, targ_tp_has_reason, false);
}

/*
 * fentry has no "location" argument: the free site is the traced function's
 * return address. bpf_get_stack() from a tracing program starts in the BPF
 * trampoline (addresses in the module area: one or two frames on 6.x, three
 * through ftrace_trampoline on 5.10), then the traced function itself (the
 * patched call at its entry, a few bytes in), then its caller: the drop
 * site, which the tracepoint reports as location. The frame after the one
 * just inside targ_fn_addr (the loader reads it from /proc/kallsyms) is that
 * caller; without the address, the third frame (right on 6.x). The kernel
 * matrix checks fentry's location against the tracepoint's on 5.10, 6.1
 * and 6.12.
 */
#define DT_FENTRY_FRAMES 8
static __always_inline __u64 dt_fentry_caller(void *ctx)
{
	__u64 ips[DT_FENTRY_FRAMES] = {};
	long n = bpf_get_stack(ctx, ips, sizeof(ips), 0);

	if (n < (long)(2 * sizeof(__u64)))
		return n >= (long)sizeof(__u64) ? ips[0] : 0;
	if (targ_fn_addr) {
		for (int i = 0; i < DT_FENTRY_FRAMES - 1; i++) {
			if (ips[i] - targ_fn_addr < 64)
				return ips[i + 1];
		}
	}
	return n >= (long)(3 * sizeof(__u64)) ? ips[2] : ips[1];
}

SEC("fentry/sk_skb_reason_drop")
int droptrace_fent(__u64 *ctx)
{
	__u64 loc = dt_fentry_caller(ctx);
	if (targ_fn_kind == DT_FN_SK_SKB_REASON_DROP)
		return dt_handle(ctx, (struct sk_buff *)ctx[1], (struct sock *)ctx[0], loc, (__u32)ctx[2], true, true);
	if (targ_fn_kind == DT_FN_KFREE_SKB_REASON)
		return dt_handle(ctx, (struct sk_buff *)ctx[0], NULL, loc, (__u32)ctx[1], true, true);
	return dt_handle(ctx, (struct sk_buff *)ctx[0], NULL, loc, 0, false, true);
}

SEC("kprobe/sk_skb_reason_drop")
int droptrace_kp(struct pt_regs *ctx)
{
	__u64 loc = 0;
#if defined(__TARGET_ARCH_x86)
	/* at function entry the return address is at the top of the stack */
	bpf_probe_read_kernel(&loc, sizeof(loc), (void *)PT_REGS_SP(ctx));
#else
	loc = PT_REGS_RET(ctx); /* link register on arm64 and friends */
#endif
	if (targ_fn_kind == DT_FN_SK_SKB_REASON_DROP)
		return dt_handle(ctx, (struct sk_buff *)PT_REGS_PARM2(ctx), (struct sock *)PT_REGS_PARM1(ctx), loc,
				 (__u32)PT_REGS_PARM3(ctx), true, false);
	if (targ_fn_kind == DT_FN_KFREE_SKB_REASON)
		return dt_handle(ctx, (struct sk_buff *)PT_REGS_PARM1(ctx), NULL, loc, (__u32)PT_REGS_PARM2(ctx), true, false);
	return dt_handle(ctx, (struct sk_buff *)PT_REGS_PARM1(ctx), NULL, loc, 0, false, false);
}
