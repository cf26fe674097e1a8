/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the loader's files share, and nothing else includes: the tracer and its ring, the
 * attach paths, and the few helpers one job lends another. loader.h is the API.
 *
 *   probe.c     the kernel: BTF, drop reasons, the drop function, the settings' layout
 *   attach.c    open → configure → load → attach, path by path, with a sentence per failure
 *   ring.c      the ring buffer's reader: mapping, waiting, waking (drain.c copies records out;
 *               drain_libbpf.c instead, in scripts/bench-ring's comparison build)
 *   maps.c      the count, stats and stack maps
 *   functions.c --path functions: the kernel functions that take an skb, attached by kprobe-multi
 */
#ifndef DROPTRACE_TRACER_H
#define DROPTRACE_TRACER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "droptrace.skel.h"

struct dt_ring {
	int epfd;
	int stopfd; /* eventfd: dt_tracer_interrupt() wakes a reader waiting without a timeout */
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	unsigned char *data;
	unsigned long mask;
	size_t page, data_size;
	void *variant; /* drain_libbpf.c's state; NULL with drain.c */
};

/* One program of the skeleton: what --attach names resolve to. */
enum dt_path { DT_PATH_TP_BTF, DT_PATH_RAW_TP, DT_PATH_FENTRY, DT_PATH_KPROBE };
extern const char *const dt_path_names[];

/* --path functions: an skb in parameter 1..5, one kprobe-multi program and link per position */
#define DT_FN_POSITIONS 5

struct btf;
struct dt_fn_lists {
	struct btf *btf;          /* the names point into its strings */
	const char **names[DT_FN_POSITIONS];
	size_t count[DT_FN_POSITIONS];
};

struct dt_tracer {
	struct droptrace_bpf *skel;
	struct bpf_link *link;
	struct bpf_link *pkt_path_links[DT_PKT_PATH_TPS]; /* --path: one per tracepoint the kernel has */
	char pkt_path_attached[256];                      /* their names, comma-separated */
	struct bpf_link *qdisc_link;                      /* qdisc:qdisc_drop, where the kernel has it */
	struct bpf_link *trap_link;                       /* devlink:devlink_trap_report, where the kernel has it */
	const char *trap_note;                            /* why not, on a kernel that has it; NULL otherwise */
	struct bpf_link *fn_links[DT_FN_POSITIONS];       /* --path functions, kprobe-multi: a link per position */
	struct bpf_link **fn_kprobes;                     /* or, without kprobe-multi, a kprobe per function */
	size_t fn_kprobe_count;
	size_t fn_count;                                  /* functions attached */
	size_t fn_skipped;                                /* listed but refused by kprobes (blacklisted) */
	double fn_attach_ms;                              /* how long finding and attaching them took */
	struct dt_ring ring;
	struct bpf_program *prog; /* the one program loaded and attached */
	const char *path;
	const char *target;
	size_t rec_size;
	int flooding; /* the last drain after a short sleep found a quarter batch or more */
};

/* Fills err with the errno, the phase and a sentence; returns -errno. Every file of the loader says its failures so. */
static inline __attribute__((format(printf, 4, 5))) int dt_fail(struct dt_error *e, int err, const char *phase, const char *fmt, ...)
{
	va_list ap;
	e->err = err < 0 ? -err : err;
	e->phase = phase;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -e->err;
}

/* probe.c: a kernel function's address from /proc/kallsyms, 0 when hidden or absent */
__u64 dt_ksym_addr(const char *name);

/* functions.c: the hookable functions taking an skb by position; attaching them to progs[] */
int dt_fn_lists(struct dt_fn_lists *l, struct dt_error *err);
void dt_fn_lists_free(struct dt_fn_lists *l);
int dt_attach_functions(struct dt_tracer *t, struct bpf_program *const progs[DT_FN_POSITIONS], int multi,
			struct dt_error *err);
void dt_detach_functions(struct dt_tracer *t);

/* ring.c */
int dt_ring_open(struct dt_ring *r, int map_fd);
void dt_ring_close(struct dt_ring *r);

/* drain.c (or drain_libbpf.c): copies up to cap committed records into buf, returns how many */
int dt_drain_open(struct dt_ring *r, int map_fd);
void dt_drain_close(struct dt_ring *r);
size_t dt_ring_drain(struct dt_ring *r, unsigned char *buf, size_t cap, size_t rec_size);

#endif /* DROPTRACE_TRACER_H */
