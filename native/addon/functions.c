// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --path functions: which kernel functions take an skb, and attaching them. pwru's method: BTF
 * names every function whose parameter 1..5 is a struct sk_buff *; ftrace's
 * available_filter_functions says which of them can be hooked (inlined, notrace and
 * __init functions cannot). Each position gets one kprobe-multi link (5.18+, CONFIG_FPROBE), or,
 * where the kernel has kprobes but not that, one kprobe per function (5.15+, for
 * bpf_get_func_ip): pwru's two backends.
 * The functions that free an skb are left out: they run after the drop has ended its path and
 * would start one for memory about to be reused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "tracer.h"

static const char *const k_freeing[] = {
	"kfree_skb", "__kfree_skb", "consume_skb", "__consume_stateless_skb", "skb_release_", "kfree_skbmem",
	"napi_consume_skb", "__napi_kfree_skb", "napi_skb_cache_put", "sk_skb_reason_drop", "skb_free_head",
	"skb_attempt_defer_free", "dev_kfree_skb", "__dev_kfree_skb", "skb_free_frag", "kfree_skb_partial",
};

static int dt_frees(const char *name)
{
	for (size_t i = 0; i < sizeof(k_freeing) / sizeof(k_freeing[0]); i++)
		if (!strncmp(name, k_freeing[i], strlen(k_freeing[i])))
			return 1;
	return 0;
}

static int dt_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* available_filter_functions' names, sorted (a line is "name" or "name [module]"); NULL if unreadable. */
static char **dt_traceable(size_t *n)
{
	static const char *const paths[] = { "/sys/kernel/tracing/available_filter_functions",
					     "/sys/kernel/debug/tracing/available_filter_functions" };
	char line[512], **names = NULL;
	size_t cap = 0;
	FILE *f = NULL;

	*n = 0;
	for (size_t i = 0; i < 2 && !f; i++)
		f = fopen(paths[i], "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \t\n")] = 0;
		if (!line[0])
			continue;
		if (*n == cap) {
			char **more = realloc(names, (cap = cap ? cap * 2 : 65536) * sizeof(*names));
			if (!more)
				break;
			names = more;
		}
		if (!(names[*n] = strdup(line)))
			break;
		(*n)++;
	}
	fclose(f);
	qsort(names, *n, sizeof(*names), dt_cmp_str);
	return names;
}

/* Whether BTF type id is (a modifier or typedef of) a pointer to struct sk_buff. */
static int dt_is_skb_ptr(const struct btf *btf, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_ptr(t))
		return 0;
	t = btf__type_by_id(btf, t->type);
	while (t && (btf_is_mod(t) || btf_is_typedef(t)))
		t = btf__type_by_id(btf, t->type);
	return t && btf_is_struct(t) && !strcmp(btf__name_by_offset(btf, t->name_off), "sk_buff");
}

void dt_fn_lists_free(struct dt_fn_lists *l)
{
	for (int p = 0; p < DT_FN_POSITIONS; p++) {
		free(l->names[p]);
		l->names[p] = NULL;
		l->count[p] = 0;
	}
	btf__free(l->btf);
	l->btf = NULL;
}

int dt_fn_lists(struct dt_fn_lists *l, struct dt_error *err)
{
	size_t ntrace = 0;
	char **traceable = dt_traceable(&ntrace);
	int nt;

	memset(l, 0, sizeof(*l));
	if (!traceable)
		return dt_fail(err, ENOENT, "open",
			       "--path functions needs ftrace's list of hookable functions, and tracefs is not mounted: "
			       "mount -t tracefs tracefs /sys/kernel/tracing (or use --path)");
	l->btf = btf__load_vmlinux_btf();
	if (!l->btf) {
		for (size_t i = 0; i < ntrace; i++)
			free(traceable[i]);
		free(traceable);
		return dt_fail(err, errno, "open", "reading the kernel's BTF failed");
	}
	nt = btf__type_cnt(l->btf);
	for (int id = 1; id < nt; id++) {
		const struct btf_type *t = btf__type_by_id(l->btf, id);
		const struct btf_type *proto;
		const struct btf_param *par;
		const char *name, *key;

		if (!btf_is_func(t))
			continue;
		proto = btf__type_by_id(l->btf, t->type);
		if (!proto || !btf_is_func_proto(proto))
			continue;
		name = btf__name_by_offset(l->btf, t->name_off);
		if (dt_frees(name))
			continue;
		key = name;
		if (!bsearch(&key, traceable, ntrace, sizeof(*traceable), dt_cmp_str))
			continue;
		par = btf_params(proto);
		for (int p = 0; p < DT_FN_POSITIONS && p < btf_vlen(proto); p++) {
			if (!dt_is_skb_ptr(l->btf, par[p].type))
				continue;
			const char **more = realloc(l->names[p], (l->count[p] + 1) * sizeof(*more));
			if (!more)
				break;
			l->names[p] = more;
			/* the names point into the BTF's strings: it is kept until the lists are freed */
			l->names[p][l->count[p]++] = name;
			break;
		}
	}
	for (size_t i = 0; i < ntrace; i++)
		free(traceable[i]);
	free(traceable);
	return 0;
}

static double dt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One kprobe per function of each position; a function kprobes refuse is skipped and counted. */
static int dt_attach_kprobes(struct dt_tracer *t, struct bpf_program *const progs[DT_FN_POSITIONS],
			     const struct dt_fn_lists *l, struct dt_error *err)
{
	size_t total = 0;

	for (int p = 0; p < DT_FN_POSITIONS; p++)
		total += l->count[p];
	if (!(t->fn_kprobes = calloc(total ? total : 1, sizeof(*t->fn_kprobes))))
		return dt_fail(err, ENOMEM, "attach", "out of memory");
	for (int p = 0; p < DT_FN_POSITIONS; p++) {
		for (size_t i = 0; i < l->count[p]; i++) {
			struct bpf_link *link = bpf_program__attach_kprobe(progs[p], false, l->names[p][i]);
			if (!link) {
				t->fn_skipped++;
				continue;
			}
			t->fn_kprobes[t->fn_kprobe_count++] = link;
		}
	}
	t->fn_count = t->fn_kprobe_count;
	if (!t->fn_count)
		return dt_fail(err, EOPNOTSUPP, "attach", "no function taking an skb could be kprobed: use --path");
	return 0;
}

int dt_attach_functions(struct dt_tracer *t, struct bpf_program *const progs[DT_FN_POSITIONS], int multi,
			struct dt_error *err)
{
	struct dt_fn_lists l;
	double t0 = dt_now_ms();
	int ret = 0;

	if ((ret = dt_fn_lists(&l, err)))
		return ret;
	t->fn_count = 0;
	t->fn_skipped = 0;
	if (!multi) {
		ret = dt_attach_kprobes(t, progs, &l, err);
		dt_fn_lists_free(&l);
		t->fn_attach_ms = dt_now_ms() - t0;
		return ret;
	}
	for (int p = 0; p < DT_FN_POSITIONS; p++) {
		LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = l.names[p], .cnt = l.count[p]);

		if (!l.count[p])
			continue;
		t->fn_links[p] = bpf_program__attach_kprobe_multi_opts(progs[p], NULL, &opts);
		if (!t->fn_links[p]) {
			int e = errno;
			size_t n = l.count[p];
			dt_fn_lists_free(&l);
			return dt_fail(err, e, "attach",
				       "attaching %zu functions taking an skb as parameter %d with kprobe-multi failed (%s): "
				       "use --path",
				       n, p + 1, strerror(e));
		}
		t->fn_count += l.count[p];
	}
	dt_fn_lists_free(&l);
	t->fn_attach_ms = dt_now_ms() - t0;
	return 0;
}

void dt_detach_functions(struct dt_tracer *t)
{
	for (int p = 0; p < DT_FN_POSITIONS; p++) {
		bpf_link__destroy(t->fn_links[p]);
		t->fn_links[p] = NULL;
	}
	for (size_t i = 0; i < t->fn_kprobe_count; i++)
		bpf_link__destroy(t->fn_kprobes[i]);
	free(t->fn_kprobes);
	t->fn_kprobes = NULL;
	t->fn_kprobe_count = 0;
}
