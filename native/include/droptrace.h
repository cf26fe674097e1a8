/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one description of what crosses from the BPF program to user space.
 * Included by native/bpf/droptrace.bpf.c (with vmlinux.h) and by the addon
 * (with <linux/types.h>). The addon exports sizeof() and offsetof() of every
 * field; src/capture/layout.test.ts checks src/model/decode.ts against them.
 *
 * Every field is fixed width and naturally aligned, so the record has the
 * same layout on both sides and no padding that differs between compilers.
 */
#ifndef DROPTRACE_H
#define DROPTRACE_H

#define DT_IFNAMSIZ 16
#define DT_COMMLEN 16
#define DT_MAX_SNAPLEN 1024  /* most packet bytes an event can carry (power of two) */
#define DT_STACK_DEPTH 32    /* frames kept per kernel stack */
#define DT_REASON_HI 8       /* reason codes above 255 (subsystem reasons) a filter list can hold */

/* dt_event.cap_from: where the captured packet bytes start */
#define DT_CAP_NONE 0
#define DT_CAP_MAC 1         /* Ethernet header (pcap LINKTYPE_ETHERNET) */
#define DT_CAP_NETWORK 2     /* IP header (pcap LINKTYPE_RAW) */

/* Shape of the kernel's drop function (fentry/kprobe paths); see core_fixes.bpf.h */
#define DT_FN_SK_SKB_REASON_DROP 0 /* 6.11+: sk_skb_reason_drop(sk, skb, reason) */
#define DT_FN_KFREE_SKB_REASON 1   /* 5.17+: kfree_skb_reason(skb, reason) */
#define DT_FN_KFREE_SKB 2          /* older: kfree_skb(skb) */

/* dt_event.flags */
#define DT_F_L3 (1u << 0)      /* saddr/daddr/l4proto valid (IPv4 or IPv6 header read) */
#define DT_F_L4 (1u << 1)      /* sport/dport (TCP/UDP) or icmp type/code valid */
#define DT_F_REASON (1u << 2)  /* reason came from the kernel (>= 5.17) */
#define DT_F_SK (1u << 3)      /* netns came from a socket (skb->sk, else rx_sk), not the device */
#define DT_F_PATH (1u << 4)    /* a struct dt_pkt_path ends the record (--path) */
#define DT_F_RX_SK (1u << 5)   /* the kernel named the receiving socket: the sk_* fields are valid */

/* dt_event.tunnel: what the outer UDP destination port said the payload is */
#define DT_TUN_NONE 0
#define DT_TUN_VXLAN 1
#define DT_TUN_GENEVE 2
#define DT_TUN_PORTS 4         /* ports of each tunnel kind the program knows */

/* dt_event.inner_flags */
#define DT_IF_L3 (1u << 0)         /* inner_saddr/daddr/l4proto valid */
#define DT_IF_L4 (1u << 1)         /* inner ports (TCP/UDP) or icmp type/code valid */
#define DT_IF_NOT_LINEAR (1u << 2) /* inner headers lie beyond the linear data: not read */

/*
 * One dropped packet, as seen at the moment the kernel freed it. 224 bytes,
 * followed in the ring buffer (and in the batches the addon delivers) by
 * exactly snaplen bytes of packet data when --snaplen is set, then by a
 * struct dt_pkt_path with --path (DT_F_PATH): every record of one tracer has the
 * same size, sizeof(struct dt_event) + snaplen [+ sizeof(struct dt_pkt_path)].
 */
struct dt_event {
	__u64 ts_ns;            /* bpf_ktime_get_ns(): CLOCK_MONOTONIC at the drop */
	__u64 location;         /* kernel address of the free site (caller of kfree_skb*) */
	__u32 reason;           /* enum skb_drop_reason value, 0 when the kernel has none */
	__u32 cpu;              /* CPU the drop happened on */
	__u32 pid;              /* tgid of the current task (0 in softirq on idle) */
	__u32 len;              /* skb->len */
	__u32 ifindex;          /* skb->dev->ifindex, 0 when the skb has no device */
	__u32 iif;              /* skb->skb_iif: the interface it arrived on */
	__u32 netns;            /* inode of the device's netns, else skb->sk's, else rx_sk's (DT_F_SK) */
	__u32 mark;             /* skb->mark */
	__u16 ethertype;        /* skb->protocol, host byte order (0x0800 IPv4, 0x86dd IPv6) */
	__u8 l4proto;           /* IPPROTO_* from the IP header (DT_F_L3) */
	__u8 ipver;             /* 4, 6, or 0 when no IP header was read */
	__u16 sport;            /* TCP/UDP source port, host order (DT_F_L4) */
	__u16 dport;            /* TCP/UDP destination port, host order (DT_F_L4) */
	__u8 tcp_flags;         /* TCP flag byte: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 */
	__u8 icmp_type;         /* ICMP/ICMPv6 type (DT_F_L4) */
	__u8 icmp_code;         /* ICMP/ICMPv6 code (DT_F_L4) */
	__u8 flags;             /* DT_F_* */
	__u8 saddr[16];         /* IPv4 in the first 4 bytes, or IPv6; network order */
	__u8 daddr[16];         /* same */
	char ifname[DT_IFNAMSIZ]; /* skb->dev->name, read at the drop (veths die) */
	char comm[DT_COMMLEN];  /* comm of the current task */
	__s32 stack_id;         /* kernel stack in dt_stacks (--stack), else negative */
	__u16 cap_len;          /* packet bytes captured (<= snaplen), valid from offset 0 of the data */
	__u8 cap_from;          /* DT_CAP_*: what the data starts with */
	__u8 pad1;              /* always 0 */
	__u32 orig_len;         /* bytes from the capture start to the end of the packet */
	/* the inner flow of a VXLAN or Geneve packet (tunnel != DT_TUN_NONE); recording format 1
	 * ended before these: readers widen its records with zeros */
	__u8 inner_saddr[16];   /* as saddr, of the inner IP header (DT_IF_L3) */
	__u8 inner_daddr[16];
	__u32 tunnel_id;        /* VXLAN/Geneve VNI */
	__u16 inner_sport;      /* host order (DT_IF_L4) */
	__u16 inner_dport;
	__u8 tunnel;            /* DT_TUN_* */
	__u8 inner_ipver;       /* 4, 6, or 0 */
	__u8 inner_l4proto;
	__u8 inner_flags;       /* DT_IF_* */
	__u8 inner_icmp_type;
	__u8 inner_icmp_code;
	__u8 inner_tcp_flags;
	__u8 pad2;              /* always 0 */
	/* the receiving socket (DT_F_RX_SK): the kfree_skb tracepoint's rx_sk (6.11+), the socket
	 * whose queue, memory or filter refused the packet; recording format 2 ended before these */
	__u64 sk_cgroup;        /* its cgroup v2 id (the cgroup directory's inode): the pod, container or unit */
	__u32 sk_ino;           /* its inode, as ss -e and /proc/PID/fd show it; 0 for a kernel socket */
	__u32 sk_uid;           /* its owner (sk_uid) */
	__u8 sk_addr[16];       /* its local address as the socket sees it: IPv4 in the first 4 bytes; network order */
	__u16 sk_port;          /* its local port, host order; 0 when unbound */
	__u8 sk_family;         /* AF_INET 2, AF_INET6 10, AF_UNIX 1, ... */
	__u8 sk_protocol;       /* IPPROTO_* (low byte of sk_protocol) */
	__u32 pad3;             /* always 0 */
};

/*
 * The path of a dropped packet (--path): what the packet's skb met on its way to the drop,
 * from tracepoints only (they exist wherever the drop tracepoint does). Kept per skb pointer
 * in the "dt_pkt_paths" LRU hash; the drop copies it to the end of its event and forgets it.
 */
#define DT_STEPS 32     /* steps kept per skb: the first, then the latest 31 */

/* dt_settings.pkt_path */
#define DT_PKT_PATH_OFF 0
#define DT_PKT_PATH_TRACEPOINTS 1 /* the tracepoints below */
#define DT_PKT_PATH_FUNCTIONS 2   /* and every kernel function taking the skb (kprobe-multi) */

/* dt_step.kind */
#define DT_STEP_XMIT_QUEUE 1 /* net:net_dev_queue: handed to a device to send (dev_queue_xmit) */
#define DT_STEP_XMIT 2       /* net:net_dev_start_xmit: the device's driver takes it: it leaves */
#define DT_STEP_NETIF_RX 3   /* net:netif_rx: queued to a device's receive backlog (veth peer, tunnel decap) */
#define DT_STEP_GRO 4        /* net:napi_gro_receive_entry: a driver hands over a received packet */
#define DT_STEP_RX 5         /* net:netif_receive_skb: the stack receives it on a device */
#define DT_STEP_QDISC_ENQ 6  /* qdisc:qdisc_enqueue (5.19+): queued in a qdisc; detail = handle */
#define DT_STEP_QDISC_DEQ 7  /* qdisc:qdisc_dequeue: left a qdisc; detail = handle */
#define DT_STEP_FIB 8        /* fib:fib_table_lookup for this packet: detail = table, result = 0 or -errno */
#define DT_STEP_FIB6 9       /* fib6:fib6_table_lookup for this packet: detail = table, result = RTN_* */
#define DT_STEP_FUNC 10      /* --path functions: a kernel function took the skb; fn = its address */

/* dt_step.flags */
#define DT_SF_REVERSE (1u << 0) /* a FIB lookup from the packet's destination to its source: rp_filter's check */

/* One step of a path. 56 bytes. */
struct dt_step {
	__u64 ts_ns;            /* bpf_ktime_get_ns(), as dt_event.ts_ns */
	__u32 ifindex;          /* the device (FIB: the chosen next hop's device, 0 if none) */
	__u32 netns;            /* inode of the device's netns (FIB: the skb's device's) */
	__u32 detail;           /* DT_STEP_FIB*: table id; DT_STEP_QDISC_*: qdisc handle */
	__s32 result;           /* DT_STEP_FIB: 0 or -errno; DT_STEP_FIB6: route type (RTN_*) */
	__u16 cpu;              /* CPU the step ran on */
	__u8 kind;              /* DT_STEP_* */
	__u8 flags;             /* DT_SF_* */
	__u32 pad;              /* always 0 */
	char ifname[DT_IFNAMSIZ]; /* the device's name at the step (devices die) */
	__u64 fn;               /* DT_STEP_FUNC: the function's address (bpf_get_func_ip); else 0 */
};

/*
 * The steps of one skb, 24 + 32 * 56 = 1816 bytes. steps says how many were seen: up to
 * DT_STEPS are step[0..steps); beyond that step[0] is the first and the latest 31
 * rotate through step[1..31] (the one seen at count n, n >= 1, is at 1 + (n - 1) % 31).
 */
struct dt_pkt_path {
	__u32 steps;            /* steps seen for this skb; more than DT_STEPS means some were cut */
	__u32 received;         /* 1: received (DT_STEP_RX, which sets skb_iif) and not sent since
				 * (DT_STEP_XMIT: a veth or tunnel then clears skb_iif): an skb with
				 * skb_iif 0 meeting such a path is a later one at the same address */
	__u64 dst_input;        /* at the drop: skb_dst(skb)->input, the routing decision as a function
				 * (ip_local_deliver, ip_forward, ip_error, dst_discard, ...); 0: no route */
	__u64 dst_output;       /* at the drop: skb_dst(skb)->output (ip_output, ...); 0: no route */
	struct dt_step step[DT_STEPS];
};

/* Key of the exact in-kernel count map (per-CPU hash). 24 bytes. */
struct dt_count_key {
	__u64 location;         /* as dt_event.location */
	__u32 reason;           /* as dt_event.reason */
	__u32 ifindex;          /* as dt_event.ifindex */
	__u32 netns;            /* as dt_event.netns */
	__u32 pad;              /* always 0: hash keys compare every byte */
};

/* Value of the count map, one per CPU; user space sums them. */
struct dt_count_val {
	__u64 packets;          /* drops that passed the filters */
	__u64 bytes;            /* sum of skb->len of those drops */
};

/*
 * Slots of the per-CPU "dt_hot" array in front of the count hash: a key
 * claims the slot its hash picks the first time it drops on a CPU, if the
 * slot is free, and is counted there from then on; otherwise in the hash.
 * Slots are never given back, so a key is counted in one place per CPU and
 * user space sums both. Value: struct dt_count_rec; a slot is in use once
 * key.location != 0 (written last, with a full barrier) and packets != 0.
 */
#define DT_HOT_SLOTS 256

/*
 * Hardware and driver drops a device reports through devlink (devlink:devlink_trap_report):
 * packets its ASIC or firmware dropped or could not forward, trapped to the CPU for visibility,
 * which never reach kfree_skb as drops. Counted exactly in the "dt_traps" hash, one entry per
 * trap of one device on one input port; control traps (packets the device hands the stack on
 * purpose: IGMP, ARP, ...) are not drops and are left out, as the kernel's drop monitor does.
 */
#define DT_TRAP_NAMELEN 48
#define DT_TRAP_ENTRIES 1024

/* dt_trap_val.type: enum devlink_trap_type */
#define DT_TRAP_DROP 0       /* the device dropped the packet (a drop trap set to action trap) */
#define DT_TRAP_EXCEPTION 1  /* the device could not forward it (TTL expired, no route, ...) */

struct dt_trap_key {
	__u64 devlink;          /* the reporting device's struct devlink: one key space per device */
	__u64 trap;             /* the trap's name pointer: one per trap of that device */
	__u32 ifindex;          /* the input port's net device, 0 when the driver names none */
	__u32 netns;            /* inode of its netns */
};

/* 200 bytes. The names are read once, when the key is first seen. */
struct dt_trap_val {
	__u64 packets;
	__u64 bytes;            /* sum of skb->len of the trapped packets */
	__u32 type;             /* DT_TRAP_* */
	__u32 pad;              /* always 0 */
	char trap[DT_TRAP_NAMELEN];   /* "source_mac_is_multicast", as devlink trap show names it */
	char group[DT_TRAP_NAMELEN];  /* "l2_drops" */
	char bus[DT_IFNAMSIZ];        /* the device as devlink names it, bus/device: "pci" */
	char device[DT_TRAP_NAMELEN]; /* "0000:03:00.0" */
	char ifname[DT_IFNAMSIZ];     /* the input port's name at the first report */
};

/* Record the addon hands to JS for traps(): key then value. 224 bytes. */
struct dt_trap_rec {
	struct dt_trap_key key;
	struct dt_trap_val val;
};

/* Indexes into the per-CPU "dt_stats" array: losses, never hidden. */
enum dt_stat {
	DT_STAT_RB_LOST = 0,    /* ring-buffer reserve failed: an event was not delivered */
	DT_STAT_MAP_FULL = 1,   /* count map (or dt_traps) full: a drop was not counted in it */
	DT_STAT_SEEN = 2,       /* drops that passed the filters (delivered + lost + sampled == seen) */
	DT_STAT_STACK_FAIL = 3, /* --stack: the stack could not be stored (map full or collision) */
	DT_STAT_SAMPLED = 4,    /* --sample N: drops counted but, by choice, not sent as events */
	DT_STAT_MAX = 5,
};

/* Record the addon hands to JS for counts(): key then the per-CPU sum. 40 bytes. */
struct dt_count_rec {
	struct dt_count_key key;
	struct dt_count_val val;
};

/*
 * What the program is set to: one struct in its .rodata (`const volatile struct dt_settings
 * CFG` in droptrace.bpf.c), written whole by the loader between open and load, so the verifier
 * sees every value as a constant and prunes every filter that is off (pwru's CFG). The bytes
 * come from TypeScript (src/capture/settings.ts encodes them from one table, by the member
 * offsets the addon reads from this struct's BTF); no default lives here. Every member is
 * fixed width and naturally aligned, and the tail is padded to 8 bytes, so the layout has no
 * implicit padding.
 */
struct dt_settings {
	__u64 wakeup_bytes;               /* wake the reader once this many bytes are queued; 0: the kernel decides */
	__u64 include[4];                 /* reason codes 0..255 to keep, as a bitmap (has_include) */
	__u64 exclude[4];                 /* reason codes 0..255 to leave out (has_exclude) */
	__u32 include_hi[DT_REASON_HI];   /* reason codes above 255 (subsystem reasons) to keep; 0: unused */
	__u32 exclude_hi[DT_REASON_HI];   /* ... to leave out */
	__u32 netns;                      /* only drops in this network namespace (inode); 0: any */
	__u32 snaplen;                    /* packet bytes after each event: a multiple of 8, <= DT_MAX_SNAPLEN */
	__u32 sample;                     /* > 1: one event per N drops of each CPU (counts stay exact) */
	__u32 hot_mask;                   /* dt_hot slots in use - 1: a power of two - 1, < DT_HOT_SLOTS */
	__u16 ethertype;                  /* only this ethertype; 0: any */
	__u16 port;                       /* only TCP/UDP from or to this port, outer or inner flow; 0: any */
	__u16 vxlan_ports[DT_TUN_PORTS];  /* UDP destination ports whose payload is VXLAN; 0: unused */
	__u16 geneve_ports[DT_TUN_PORTS]; /* ... whose payload is Geneve */
	__u8 host_addr[16];               /* only packets from or to this address (host_ver), already masked */
	__u8 host_mask[16];
	char ifname[DT_IFNAMSIZ];         /* only drops whose skb->dev has this name (has_ifname) */
	__u8 l4proto;                     /* only this IP protocol, outer or inner; 0: any (implies an IP header) */
	__u8 host_ver;                    /* 0: no host filter, else 4 or 6 */
	__u8 has_ifname;                  /* 1: the ifname filter is on */
	__u8 has_include;                 /* 1: keep only the reasons of include/include_hi */
	__u8 has_exclude;                 /* 1: leave out the reasons of exclude/exclude_hi */
	__u8 emit_events;                 /* 0: count only, nothing goes to the ring buffer */
	__u8 stack;                       /* 1: record a kernel stack id per event */
	__u8 hot;                         /* 1: count in the dt_hot slots before the hash; 0: the hash only */
	__u8 pkt_path;                    /* DT_PKT_PATH_*: follow skbs, a struct dt_pkt_path ends each event */
	__u8 pad[3];                      /* to a multiple of 8 bytes; zero */
};

#endif /* DROPTRACE_H */
