/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences, in one place. Every shim names the kernel change that
 * made it necessary (the idea of bcc libbpf-tools/core_fixes.bpf.h).
 */
#ifndef DROPTRACE_CORE_FIXES_BPF_H
#define DROPTRACE_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>

/*
 * What the loader probes in the kernel and sets between open and load (never the user's
 * settings: those are struct dt_settings CFG).
 *
 * The kfree_skb tracepoint's arguments:
 *   < 5.17   (skb, location)                        commit c504e5c2f964 added reason
 *   5.17+    (skb, location, reason)
 *   6.11+    (skb, location, reason, rx_sk)          commit c53795d48ee8 added rx_sk
 * The loader reads the tracepoint's BTF prototype; the verifier prunes the ctx[2] and ctx[3]
 * reads on kernels where they would be out of bounds.
 */
const volatile __u8 targ_tp_has_reason = 1;
const volatile __u8 targ_tp_has_rx_sk = 0;

/*
 * The function a drop goes through, for the fentry/kprobe paths (DT_FN_* in droptrace.h):
 *   < 5.17   kfree_skb(skb)                          DT_FN_KFREE_SKB
 *   5.17+    kfree_skb_reason(skb, reason)           DT_FN_KFREE_SKB_REASON
 *   6.11+    sk_skb_reason_drop(sk, skb, reason)     DT_FN_SK_SKB_REASON_DROP
 *            (commit ba8de796baf4: kfree_skb_reason became an inline wrapper)
 * and, for fentry, that function's address, to find its caller's frame in the stack.
 */
const volatile __u8 targ_fn_kind = DT_FN_SK_SKB_REASON_DROP;
const volatile __u64 targ_fn_addr = 0;

/* SKB_CONSUMED's value on this kernel (from BTF; -1 where it has none): a free that is no drop. */
const volatile __s32 targ_consumed_reason = -1;

/*
 * Since 7.x a qdisc says which of its limits refused a packet in its own tracepoint,
 * qdisc:qdisc_drop(qdisc, txq, dev, skb, enum qdisc_drop_reason), and the skb is then freed with
 * the bare SKB_DROP_REASON_QDISC_DROP. Where the loader attached that tracepoint, this is
 * QDISC_DROP's value (from BTF), and a drop with it takes the reason the qdisc gave; else -1.
 */
const volatile __s32 targ_qdisc_drop_reason = -1;

/*
 * tp_btf and fentry programs receive BTF-typed pointers the verifier lets us
 * load from directly (one JITed load, faults handled); raw_tp and kprobe get
 * plain numbers and must use bpf_probe_read_kernel (a helper call per field).
 * `direct` is a compile-time constant in each program after inlining, so only
 * one side of this survives. Both sides are CO-RE relocated.
 */
#define DT_RD(direct, p, f) ((direct) ? (p)->f : BPF_CORE_READ(p, f))

/*
 * struct net_device::nd_net and sock_common::skc_net are possible_net_t on
 * every kernel we support; with CONFIG_NET_NS off the net pointer is absent,
 * and there is only init_net: report 0 (unknown) rather than fail to load.
 */
static __always_inline __u32 dt_dev_netns(struct net_device *dev, bool direct)
{
	if (!dev)
		return 0;
	if (!bpf_core_field_exists(dev->nd_net.net))
		return 0;
	struct net *net = DT_RD(direct, dev, nd_net.net);
	if (!net)
		return 0;
	return DT_RD(direct, net, ns.inum);
}

static __always_inline __u32 dt_sk_netns(struct sock *sk, bool direct)
{
	if (!sk)
		return 0;
	if (!bpf_core_field_exists(sk->__sk_common.skc_net.net))
		return 0;
	struct net *net = DT_RD(direct, sk, __sk_common.skc_net.net);
	if (!net)
		return 0;
	return DT_RD(direct, net, ns.inum);
}

/*
 * The socket's cgroup v2: sock_cgroup_data holds a struct cgroup pointer since 5.15 (commit
 * 8520e224f547); before, a tagged u64 this reads as "none". rx_sk exists only on 6.11+, so
 * nothing is lost, but the program must still load on 5.10: the field test is a load-time
 * constant there.
 */
static __always_inline __u64 dt_sk_cgroup(struct sock *sk, bool direct)
{
	if (!bpf_core_field_exists(sk->sk_cgrp_data.cgroup))
		return 0;
	struct cgroup *cg = DT_RD(direct, sk, sk_cgrp_data.cgroup);
	if (!cg)
		return 0;
	struct kernfs_node *kn = DT_RD(direct, cg, kn);
	if (!kn)
		return 0;
	return DT_RD(direct, kn, id);
}

#endif /* DROPTRACE_CORE_FIXES_BPF_H */
