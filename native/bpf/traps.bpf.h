/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Hardware and driver drops: devlink:devlink_trap_report(devlink, skb, metadata), which a
 * device's driver fires for every packet its hardware trapped to the CPU (see dt_trap_key in
 * droptrace.h). The tracepoint exists where the kernel has devlink (CONFIG_NET_DEVLINK); the
 * loader attaches these programs in the drop program's flavour where it does, and only when no
 * packet filter is set: a trap is counted by device, trap and port, not by flow or reason.
 * Included by droptrace.bpf.c after the filters' helpers.
 *
 * struct devlink and struct devlink_trap_metadata are private to net/devlink and absent from a
 * vmlinux.h made on a kernel without devlink: the fields read are declared here and CO-RE finds
 * them in the running kernel's BTF (the ___dt suffix is dropped when matching).
 */
#ifndef DROPTRACE_TRAPS_BPF_H
#define DROPTRACE_TRAPS_BPF_H

enum devlink_trap_type___dt {
	DEVLINK_TRAP_TYPE_DROP___dt,
	DEVLINK_TRAP_TYPE_EXCEPTION___dt,
	DEVLINK_TRAP_TYPE_CONTROL___dt,
};

struct devlink_trap_metadata___dt {
	const char *trap_name;
	const char *trap_group_name;
	struct net_device *input_dev;
	enum devlink_trap_type___dt trap_type; /* 5.7+ (with control traps) */
} __attribute__((preserve_access_index));

struct devlink___dt {
	struct device *dev;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* resized by the loader where the kernel has the tracepoint */
	__type(key, struct dt_trap_key);
	__type(value, struct dt_trap_val);
} dt_traps SEC(".maps");

/* The names of a key seen for the first time, read once: devlink's strings and the port's. */
static __always_inline void dt_trap_names(struct dt_trap_val *v, struct devlink___dt *dl,
					  struct devlink_trap_metadata___dt *md, struct net_device *in)
{
	struct device *dev = BPF_CORE_READ(dl, dev);

	bpf_probe_read_kernel_str(v->trap, sizeof(v->trap), BPF_CORE_READ(md, trap_name));
	bpf_probe_read_kernel_str(v->group, sizeof(v->group), BPF_CORE_READ(md, trap_group_name));
	if (dev) {
		bpf_probe_read_kernel_str(v->device, sizeof(v->device), BPF_CORE_READ(dev, kobj.name));
		const struct bus_type *bus = BPF_CORE_READ(dev, bus);
		if (bus)
			bpf_probe_read_kernel_str(v->bus, sizeof(v->bus), BPF_CORE_READ(bus, name));
	}
	if (in)
		bpf_probe_read_kernel_str(v->ifname, sizeof(v->ifname), in->name);
}

/*
 * Traps come at the rate a device's policer lets through (thousands a second at most), so one
 * shared hash with atomic adds serves; what reads it never waits for a ring.
 */
static __always_inline int dt_trap(struct devlink___dt *dl, struct sk_buff *skb, struct devlink_trap_metadata___dt *md)
{
	__u32 type = DEVLINK_TRAP_TYPE_DROP___dt;

	if (!md)
		return 0;
	if (bpf_core_field_exists(md->trap_type))
		type = BPF_CORE_READ(md, trap_type);
	/* control traps are packets the device hands the stack on purpose, not drops */
	if (type == DEVLINK_TRAP_TYPE_CONTROL___dt)
		return 0;

	struct net_device *in = BPF_CORE_READ(md, input_dev);
	struct dt_trap_key key = {
		.devlink = (__u64)dl,
		.trap = (__u64)BPF_CORE_READ(md, trap_name),
		.ifindex = in ? BPF_CORE_READ(in, ifindex) : 0,
		.netns = dt_dev_netns(in, false),
	};
	if (CFG.netns && key.netns != CFG.netns)
		return 0;
	if (!dt_ifname_wanted(in))
		return 0;

	__u32 len = skb ? BPF_CORE_READ(skb, len) : 0;
	struct dt_trap_val *v = bpf_map_lookup_elem(&dt_traps, &key);
	if (!v) {
		struct dt_trap_val init = { .type = type };
		dt_trap_names(&init, dl, md, in);
		/* BPF_NOEXIST: a report on another CPU may have made it first; count into that one */
		if (bpf_map_update_elem(&dt_traps, &key, &init, BPF_NOEXIST) && bpf_map_lookup_elem(&dt_traps, &key) == NULL) {
			dt_stat_inc(DT_STAT_MAP_FULL);
			return 0;
		}
		v = bpf_map_lookup_elem(&dt_traps, &key);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
	return 0;
}

SEC("tp_btf/devlink_trap_report")
int droptrace_trap(__u64 *ctx)
{
	return dt_trap((struct devlink___dt *)ctx[0], (struct sk_buff *)ctx[1], (struct devlink_trap_metadata___dt *)ctx[2]);
}

SEC("raw_tp/devlink_trap_report")
int droptrace_trap_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return dt_trap((struct devlink___dt *)ctx->args[0], (struct sk_buff *)ctx->args[1],
		       (struct devlink_trap_metadata___dt *)ctx->args[2]);
}

#endif /* DROPTRACE_TRAPS_BPF_H */
