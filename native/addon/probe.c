// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the kernel offers, read without privileges: its BTF (the tracepoint's shape, the drop
 * function, enum skb_drop_reason and the subsystems' reason enums), kprobe support, kallsyms,
 * and struct dt_settings as the program's own BTF describes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "tracer.h"

static const char *const k_fn_names[] = {
	[DT_FN_SK_SKB_REASON_DROP] = "sk_skb_reason_drop",
	[DT_FN_KFREE_SKB_REASON] = "kfree_skb_reason",
	[DT_FN_KFREE_SKB] = "kfree_skb",
};

#define DT_PP_NAME(tp) #tp,
const char *const dt_pkt_path_tps[DT_PKT_PATH_TPS] = { DT_PKT_PATH_TP_LIST(DT_PP_NAME) };
#undef DT_PP_NAME

int dt_probe_kernel(struct dt_kernel *k)
{
	struct btf *btf;
	int id, i;

	memset(k, 0, sizeof(*k));
	k->fn_kind = -1;
	k->consumed_reason = -1;
	k->qdisc_drop_reason = -1;
	k->has_kprobes = access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 ||
			 access("/sys/kernel/tracing/kprobe_events", F_OK) == 0 ||
			 access("/sys/kernel/debug/tracing/kprobe_events", F_OK) == 0;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno;
	k->has_btf = 1;

	id = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id > 0) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		t = btf__type_by_id(btf, t->type); /* pointer */
		if (t && btf_is_ptr(t))
			t = btf__type_by_id(btf, t->type);
		k->has_tp_btf = 1;
		/* first parameter is the tracepoint's void *__data */
		k->tp_has_reason = t && btf_is_func_proto(t) && btf_vlen(t) >= 4;
		k->tp_has_rx_sk = t && btf_is_func_proto(t) && btf_vlen(t) >= 5;
	}

	for (i = 0; i < DT_PKT_PATH_TPS; i++) {
		char name[64];
		snprintf(name, sizeof(name), "btf_trace_%s", dt_pkt_path_tps[i]);
		if (btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) > 0)
			k->pkt_path_tps |= 1u << i;
	}

	k->has_qdisc_drop = btf__find_by_name_kind(btf, "btf_trace_qdisc_drop", BTF_KIND_TYPEDEF) > 0;
	k->has_devlink_trap = btf__find_by_name_kind(btf, "btf_trace_devlink_trap_report", BTF_KIND_TYPEDEF) > 0;
	k->has_kprobe_multi = btf__find_by_name_kind(btf, "bpf_kprobe_multi_link", BTF_KIND_STRUCT) > 0;
	/* bpf_get_func_ip became callable from kprobes in 5.15 */
	k->kprobe_func_ip = k->has_kprobes && libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_func_ip, NULL) == 1;

	for (i = 0; i < 3; i++) {
		if (btf__find_by_name_kind(btf, k_fn_names[i], BTF_KIND_FUNC) > 0) {
			k->fn_kind = i;
			k->fn_name = k_fn_names[i];
			break;
		}
	}

	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id > 0) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e = btf_enum(t);
		k->reason_count = btf_vlen(t);
		for (i = 0; i < btf_vlen(t); i++, e++) {
			const char *name = btf__name_by_offset(btf, e->name_off);
			if (!strcmp(name, "SKB_CONSUMED"))
				k->consumed_reason = e->val;
			else if (!strcmp(name, "SKB_DROP_REASON_QDISC_DROP"))
				k->qdisc_drop_reason = e->val;
		}
	}
	btf__free(btf);
	return 0;
}

/* Names of enum skb_drop_reason_subsys (6.5+), prefix stripped, by index; 0 when absent. */
static int dt_subsys_names(const struct btf *btf, char names[][64], int max)
{
	int id = btf__find_by_name_kind(btf, "skb_drop_reason_subsys", BTF_KIND_ENUM);
	const struct btf_type *t;
	const struct btf_enum *e;
	int i, n = 0;

	if (id <= 0)
		return 0;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (i = 0; i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(btf, e->name_off);
		if (!strncmp(name, "SKB_DROP_REASON_SUBSYS_", 23))
			name += 23;
		if (e->val < (__u32)max && strcmp(name, "NUM")) {
			snprintf(names[e->val], 64, "%s", name);
			if ((int)e->val + 1 > n)
				n = e->val + 1;
		}
	}
	return n;
}

/*
 * A subsystem's own reasons: enums named "*_drop_reason" (ovs_drop_reason, mac80211_drop_reason)
 * whose values carry a subsystem index above 0 in their high 16 bits. "__" names are range
 * markers, not reasons.
 */
static void dt_subsys_reasons(const struct btf *btf, __u32 first, int nsub,
			      void (*fn)(void *ctx, int value, const char *name), void *ctx)
{
	__u32 id, n = btf__type_cnt(btf);

	for (id = first; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e;
		const char *name;
		size_t len;
		int i;

		if (!btf_is_enum(t))
			continue;
		name = btf__name_by_offset(btf, t->name_off);
		len = strlen(name);
		if (len < 11 || strcmp(name + len - 11, "drop_reason") || !strcmp(name, "skb_drop_reason"))
			continue;
		e = btf_enum(t);
		for (i = 0; i < btf_vlen(t); i++, e++) {
			const char *en = btf__name_by_offset(btf, e->name_off);
			__u32 sub = e->val >> 16;
			if (sub && (int)sub < nsub && strncmp(en, "__", 2))
				fn(ctx, (int)e->val, en);
		}
	}
}

int dt_reasons(void (*fn)(void *ctx, int value, const char *name), void *ctx)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int id, i;

	if (!btf)
		return -errno;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id > 0) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e = btf_enum(t);
		for (i = 0; i < btf_vlen(t); i++, e++) {
			const char *name = btf__name_by_offset(btf, e->name_off);
			if (!strncmp(name, "SKB_DROP_REASON_", 16))
				name += 16;
			else if (!strncmp(name, "SKB_", 4))
				name += 4;
			fn(ctx, (int)e->val, name);
		}
		/* subsystem reasons: in vmlinux when built in, else in the module's BTF, which is
		 * read only for modules a subsystem is named after (OPENVSWITCH: openvswitch) */
		char names[16][64] = { { 0 } };
		int nsub = dt_subsys_names(btf, names, 16);
		dt_subsys_reasons(btf, 1, nsub, fn, ctx);
		for (i = 1; i < nsub; i++) {
			char mod[64], path[128];
			struct btf *split;
			size_t j;

			snprintf(mod, sizeof(mod), "%s", names[i]);
			for (j = 0; mod[j]; j++)
				mod[j] = mod[j] == '_' ? 0 : (char)(mod[j] | 0x20);
			snprintf(path, sizeof(path), "/sys/kernel/btf/%s", mod);
			split = btf__parse_split(path, btf);
			if (!split)
				continue;
			dt_subsys_reasons(split, btf__type_cnt(btf), nsub, fn, ctx);
			btf__free(split);
		}
	}
	btf__free(btf);
	return id > 0 ? 0 : -ENOENT;
}

int dt_reason_subsystems(void (*fn)(void *ctx, int value, const char *name), void *ctx)
{
	struct btf *btf = btf__load_vmlinux_btf();
	char names[16][64] = { { 0 } };
	int i, n;

	if (!btf)
		return -errno;
	n = dt_subsys_names(btf, names, 16);
	for (i = 1; i < n; i++)
		if (names[i][0])
			fn(ctx, i, names[i]);
	btf__free(btf);
	return 0;
}

int dt_settings_layout(void (*fn)(void *ctx, const char *name, uint32_t offset, uint32_t size, uint32_t count), void *ctx)
{
	/* opening parses the embedded object only: no kernel call, no privilege */
	struct droptrace_bpf *skel = droptrace_bpf__open();
	const struct btf *btf;
	const struct btf_type *st;
	int id, i, ret = 0;

	if (!skel)
		return -errno;
	btf = bpf_object__btf(skel->obj);
	id = btf ? btf__find_by_name_kind(btf, "dt_settings", BTF_KIND_STRUCT) : -ENOENT;
	if (id < 0) {
		ret = id;
		goto out;
	}
	st = btf__type_by_id(btf, id);
	for (i = 0; i < btf_vlen(st); i++) {
		const struct btf_member *m = btf_members(st) + i;
		int tid = btf__resolve_type(btf, m->type);
		const struct btf_type *t = btf__type_by_id(btf, tid);
		uint32_t count = 1;
		__s64 size;

		if (btf_is_array(t)) {
			count = btf_array(t)->nelems;
			tid = btf__resolve_type(btf, btf_array(t)->type);
		}
		size = btf__resolve_size(btf, tid);
		if (size < 0) {
			ret = (int)size;
			goto out;
		}
		fn(ctx, btf__name_by_offset(btf, m->name_off), btf_member_bit_offset(st, i) / 8, (uint32_t)size, count);
	}
	ret = (int)st->size;
out:
	droptrace_bpf__destroy(skel);
	return ret;
}

/* fentry needs it to find the traced function's own frame in the stack. */
__u64 dt_ksym_addr(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512], sym[256], type;
	unsigned long long addr;
	__u64 found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym) != 3)
			continue;
		if ((type == 'T' || type == 't') && !strcmp(sym, name)) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

