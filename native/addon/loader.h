/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel side of the addon in plain C: probe the kernel, open →
 * configure → load → attach the skeleton, drain the ring buffer into
 * caller-provided batches, read the exact counts, detach. No Node here.
 */
#ifndef DROPTRACE_LOADER_H
#define DROPTRACE_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "droptrace.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dt_attach {
	DT_ATTACH_AUTO = 0,
	DT_ATTACH_TRACEPOINT = 1, /* tp_btf, then raw_tp */
	DT_ATTACH_FENTRY = 2,
	DT_ATTACH_KPROBE = 3,
	DT_ATTACH_TP_BTF = 4,     /* only tp_btf */
	DT_ATTACH_RAW_TP = 5,     /* only raw_tp */
};

/* How to open a tracer: the attach path and the maps' sizes here, the program's own settings
 * as they go into its .rodata (struct dt_settings, droptrace.h). */
struct dt_config {
	int attach;                   /* enum dt_attach */
	uint32_t ring_bytes;          /* ring buffer size, power of two; 0: the program's default */
	uint32_t count_entries;       /* max keys in the count map; 0: the program's default */
	int verbose;                  /* keep libbpf debug output, incl. verifier log */
	struct dt_settings settings;  /* copied whole into the program's CFG */
};

/* Calls fn(name, offset, element size, elements) for each member of struct dt_settings, as the
 * program's BTF describes it: what TypeScript encodes the settings by. Returns the struct's size,
 * or a negative errno. */
int dt_settings_layout(void (*fn)(void *ctx, const char *name, uint32_t offset, uint32_t size, uint32_t count), void *ctx);

/* What the kernel offers, from BTF and sysfs; no privileges needed. */
/*
 * The tracepoints --path follows an skb through, the one list: probe.c names them from it,
 * attach.c finds their programs (droptrace_path_<tp>, droptrace_path_raw_<tp>) from it.
 * qdisc_enqueue is 5.19+; the rest are in every kernel with BTF (5.4+).
 */
#define DT_PKT_PATH_TP_LIST(X)                                                                  \
	X(net_dev_queue) X(net_dev_start_xmit) X(netif_rx) X(napi_gro_receive_entry) X(netif_receive_skb) \
	X(qdisc_enqueue) X(qdisc_dequeue) X(fib_table_lookup) X(fib6_table_lookup) X(consume_skb)
#define DT_PP_COUNT(tp) +1
#define DT_PKT_PATH_TPS (0 DT_PKT_PATH_TP_LIST(DT_PP_COUNT))
extern const char *const dt_pkt_path_tps[DT_PKT_PATH_TPS];

struct dt_kernel {
	int has_btf;              /* /sys/kernel/btf/vmlinux loads */
	int has_tp_btf;           /* btf_trace_kfree_skb exists */
	int tp_has_reason;        /* the tracepoint carries enum skb_drop_reason */
	int tp_has_rx_sk;         /* ... and the receiving socket (6.11+) */
	int fn_kind;              /* DT_FN_*, -1 when no drop function was found */
	const char *fn_name;      /* the fentry/kprobe target */
	int has_kprobes;          /* kprobe PMU or tracefs kprobe_events exists */
	int consumed_reason;      /* SKB_CONSUMED's value, -1 if none */
	int qdisc_drop_reason;    /* SKB_DROP_REASON_QDISC_DROP's value, -1 if none */
	int has_qdisc_drop;       /* qdisc:qdisc_drop (7.x+) names the qdisc's own reason */
	int has_devlink_trap;     /* devlink:devlink_trap_report (CONFIG_NET_DEVLINK): hardware and driver drops */
	int reason_count;         /* values in enum skb_drop_reason, 0 if none */
	unsigned pkt_path_tps;    /* bit i: the kernel has dt_pkt_path_tps[i] (a btf_trace_ type) */
	int has_kprobe_multi;     /* kprobe-multi links (5.18+, CONFIG_FPROBE): struct bpf_kprobe_multi_link in BTF */
	int kprobe_func_ip;       /* a kprobe program may call bpf_get_func_ip (5.15+) */
};

struct dt_error {
	int err;                  /* positive errno */
	const char *phase;        /* "open", "load", "attach", "read" */
	char msg[512];            /* one sentence for people */
	char log[8192];           /* libbpf's words (verifier log only when verbose) */
};

struct dt_tracer;

int dt_probe_kernel(struct dt_kernel *k);
/* Calls fn(value, name-without-prefix) for each enum skb_drop_reason entry. */
int dt_reasons(void (*fn)(void *ctx, int value, const char *name), void *ctx);
/* Subsystems of drop reasons (enum skb_drop_reason_subsys, 6.5+) above CORE: index, name. */
int dt_reason_subsystems(void (*fn)(void *ctx, int value, const char *name), void *ctx);

/* Tries the attach paths the config allows, best first. On success
 * dt_tracer_path() names the one in use ("tp_btf", "raw_tp", "fentry",
 * "kprobe") and tried[] says why better ones were skipped. */
int dt_tracer_open(const struct dt_config *cfg, struct dt_tracer **out, struct dt_error *err,
		   char *tried, size_t tried_len);
const char *dt_tracer_path(const struct dt_tracer *t);
const char *dt_tracer_target(const struct dt_tracer *t);
/* Whether qdisc:qdisc_drop is attached: qdisc drops then carry the qdisc's own reason. */
int dt_tracer_qdisc_reasons(const struct dt_tracer *t);
/* Whether devlink:devlink_trap_report is attached: hardware and driver drops are counted in dt_traps. */
int dt_tracer_traps_attached(const struct dt_tracer *t);
/* Why not, on a kernel that has the tracepoint ("" when attached or absent). */
const char *dt_tracer_traps_note(const struct dt_tracer *t);
/* With --path: the path tracepoints attached, comma-separated ("" without --path). */
const char *dt_tracer_pkt_path_tps(const struct dt_tracer *t);
/* With --path functions: how many kernel functions were attached, how many kprobes refused,
 * in how many ms, and whether with kprobe-multi (else a kprobe each). */
size_t dt_tracer_fn_count(const struct dt_tracer *t);
size_t dt_tracer_fn_skipped(const struct dt_tracer *t);
double dt_tracer_fn_attach_ms(const struct dt_tracer *t);
int dt_tracer_fn_multi(const struct dt_tracer *t);

/* Size of one record in the batches: sizeof(struct dt_event) + snaplen. */
size_t dt_tracer_record_size(const struct dt_tracer *t);

/* Frames of a kernel stack recorded with --stack; returns how many (<= DT_STACK_DEPTH). */
int dt_tracer_stack(struct dt_tracer *t, int32_t id, uint64_t *ips);

/* Drains up to cap records into buf (cap * dt_tracer_record_size() bytes).
 * With timeout_ms > 0 it waits: with nothing queued, until the first drop,
 * dt_tracer_interrupt() or a second has passed (an idle reader costs
 * nothing); then at most timeout_ms for a batch to build up. timeout_ms <= 0 only drains.
 * Returns records copied (0 when interrupted), or a negative errno. Nothing
 * is consumed that is not copied. */
int dt_tracer_poll(struct dt_tracer *t, void *buf, size_t cap, int timeout_ms);

/* Wakes a reader waiting in dt_tracer_poll() for good: every later wait
 * returns at once (call it before joining the reader). */
void dt_tracer_interrupt(struct dt_tracer *t);

/* Exact counts: fills *recs (malloc'd, caller frees) with summed per-CPU values. */
int dt_tracer_counts(struct dt_tracer *t, struct dt_count_rec **recs, size_t *n);
int dt_tracer_stats(struct dt_tracer *t, uint64_t out[DT_STAT_MAX]);
/* The devlink trap counts, one record per trap, device and port: *recs (malloc'd, caller frees), *n.
 * None (n = 0) where the tracepoint is not attached. */
int dt_tracer_traps(struct dt_tracer *t, struct dt_trap_rec **recs, size_t *n);
/*
 * Removes these count keys from the hash (a key in a hot slot stays: slots are
 * bounded and never given back) and returns each removed key's final count.
 * *recs is malloc'ed (NULL when nothing was removed); the caller frees it.
 */
int dt_tracer_forget(struct dt_tracer *t, const struct dt_count_key *keys, size_t n, struct dt_count_rec **recs, size_t *nout);

/*
 * Runs of the program the kernel skipped because it was already running on
 * that CPU (a drop in an interrupt that arrived while the program ran): those
 * drops were neither counted nor sent. 0 on kernels that do not count them.
 */
uint64_t dt_tracer_missed(struct dt_tracer *t);

/* Removes the program from the kernel's drop path; maps stay readable. */
void dt_tracer_detach(struct dt_tracer *t);
void dt_tracer_close(struct dt_tracer *t);

#ifdef __cplusplus
}
#endif
#endif /* DROPTRACE_LOADER_H */
