// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Linear loader in the libbpf-bootstrap style: open → configure → load →
 * attach, one message per phase; a failed attempt destroys its skeleton
 * before it returns, dt_tracer_close() undoes a success. Tries attach paths
 * best first and remembers why each better one failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "droptrace.skel.h"

/*
 * Our own consumer of the BPF ring buffer (the kernel's layout, as libbpf
 * maps it): a read-write consumer page, then the producer page and the data
 * area mapped twice so a record that wraps is contiguous. The reader needs
 * the two positions anyway, to know how much is queued before it decides to
 * sleep or drain (libbpf 1.1.2 has no such query; ring__avail_data_size is
 * 1.3+), and with them a drain is the twenty lines of dt_ring_drain: read
 * the producer position once, copy, store the consumer position once, where
 * libbpf's ring_buffer__consume stores it after every record and keeps
 * chasing the producer. Measured side by side (scripts/bench-ring --reps 5
 * --unfiltered, closed-port flood of ~570k drops/s, 2 vCPU VM, 2026-11-29):
 * this drain 156 ns per program run, 0.88 of the untraced rate; through
 * libbpf (the DT_RING_LIBBPF build) 161 ns, 0.85; both 0 lost at 63-64 % of
 * a core. A small edge, within this VM's noise: it stays because it costs
 * no more code than calling libbpf would.
 */
struct dt_ring {
#ifdef DT_RING_LIBBPF
	struct ring_buffer *rb; /* the comparison build: drains through libbpf (scripts/bench-ring) */
	struct dt_copy {
		unsigned char *buf;
		size_t cap, n, rec_size;
	} copy;
#endif
	int epfd;
	int stopfd; /* eventfd: dt_tracer_interrupt() wakes a reader waiting without a timeout */
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	unsigned char *data;
	unsigned long mask;
	size_t page, data_size;
};

/* One program of the skeleton: what --attach names resolve to. */
enum dt_path { DT_PATH_TP_BTF, DT_PATH_RAW_TP, DT_PATH_FENTRY, DT_PATH_KPROBE };
static const char *const dt_path_names[] = {
	[DT_PATH_TP_BTF] = "tp_btf",
	[DT_PATH_RAW_TP] = "raw_tp",
	[DT_PATH_FENTRY] = "fentry",
	[DT_PATH_KPROBE] = "kprobe",
};

struct dt_tracer {
	struct droptrace_bpf *skel;
	struct bpf_link *link;
	struct dt_ring ring;
	struct bpf_program *prog; /* the one program loaded and attached */
	const char *path;
	const char *target;
	size_t rec_size;
	int flooding; /* the last drain after a short sleep found a quarter batch or more */
};

/* ---- libbpf's log: kept for the error, verifier log only when verbose ---- */
static struct {
	char *buf;
	size_t len, cap;
	int verbose;
	int in_verifier_log;
} g_log;

static int dt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (g_log.verbose) {
		/* --verbose: everything, verifier log included, straight to stderr */
		return vfprintf(stderr, fmt, ap);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return 0;
	if (strstr(line, "-- BEGIN PROG LOAD LOG --"))
		g_log.in_verifier_log = 1;
	if (g_log.in_verifier_log && !g_log.verbose) {
		if (strstr(line, "-- END PROG LOAD LOG --"))
			g_log.in_verifier_log = 0;
		return 0;
	}
	if (strstr(line, "-- END PROG LOAD LOG --"))
		g_log.in_verifier_log = 0;
	if (!g_log.buf)
		return 0;
	size_t len = strlen(line);
	if (g_log.len + len + 1 > g_log.cap)
		len = g_log.cap > g_log.len + 1 ? g_log.cap - g_log.len - 1 : 0;
	memcpy(g_log.buf + g_log.len, line, len);
	g_log.len += len;
	g_log.buf[g_log.len] = 0;
	return 0;
}

static void dt_log_begin(struct dt_error *e, int verbose)
{
	e->log[0] = 0;
	g_log.buf = e->log;
	g_log.cap = sizeof(e->log);
	g_log.len = 0;
	g_log.verbose = verbose;
	g_log.in_verifier_log = 0;
	libbpf_set_print(dt_libbpf_print);
}

static void dt_log_end(void)
{
	g_log.buf = NULL;
	libbpf_set_print(NULL);
}

static int dt_fail(struct dt_error *e, int err, const char *phase, const char *fmt, ...)
{
	va_list ap;
	e->err = err < 0 ? -err : err;
	e->phase = phase;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -e->err;
}

/* ---- kernel probing (BTF and sysfs; unprivileged) ---- */

static const char *const k_fn_names[] = {
	[DT_FN_SK_SKB_REASON_DROP] = "sk_skb_reason_drop",
	[DT_FN_KFREE_SKB_REASON] = "kfree_skb_reason",
	[DT_FN_KFREE_SKB] = "kfree_skb",
};

int dt_probe_kernel(struct dt_kernel *k)
{
	struct btf *btf;
	int id, i;

	memset(k, 0, sizeof(*k));
	k->fn_kind = -1;
	k->consumed_reason = -1;
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
	}

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
			if (!strcmp(btf__name_by_offset(btf, e->name_off), "SKB_CONSUMED"))
				k->consumed_reason = e->val;
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

/*
 * Address of a kernel function from /proc/kallsyms, 0 when hidden or absent.
 * fentry needs it to find the traced function's own frame in the stack.
 */
static __u64 dt_ksym_addr(const char *name)
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

/* ---- open → configure → load → attach ---- */

static void dt_configure(struct droptrace_bpf *skel, const struct dt_config *cfg, const struct dt_kernel *k)
{
	struct droptrace_bpf__rodata *ro = skel->rodata;

	ro->targ_tp_has_reason = k->tp_has_reason;
	ro->targ_fn_kind = k->fn_kind < 0 ? DT_FN_KFREE_SKB : k->fn_kind;
	ro->targ_consumed_reason = k->consumed_reason;
	/* the user's settings: one assignment (a struct copy; rodata's const volatile is cast away
	 * as libbpf-tools' loaders do for their targ_ arrays) */
	*(struct dt_settings *)&ro->CFG = cfg->settings;

	if (cfg->settings.stack)
		bpf_map__set_max_entries(skel->maps.dt_stacks, 4096);
	if (cfg->ring_bytes)
		bpf_map__set_max_entries(skel->maps.dt_events, cfg->ring_bytes);
	if (!cfg->settings.emit_events)
		bpf_map__set_max_entries(skel->maps.dt_events, 4096); /* unused, keep it small */
	if (cfg->count_entries)
		bpf_map__set_max_entries(skel->maps.dt_counts, cfg->count_entries);
}

/* CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON, from /proc/self/status. */
static int dt_privileged(void)
{
	char line[256];
	unsigned long long caps = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return (caps >> 21 & 1) || ((caps >> 39 & 1) && (caps >> 38 & 1));
}

/*
 * True when a seccomp filter (a container runtime's profile) answers bpf() itself. A bpf command
 * that does not exist reaches the kernel as EINVAL; a filter refuses it before, with EPERM.
 */
static int dt_bpf_filtered(void)
{
	char line[256];
	int mode = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	if (mode != 2)
		return 0;
	return syscall(__NR_bpf, -1, NULL, 0) < 0 && errno == EPERM;
}

static const char *dt_load_sentence(int err, enum dt_path path)
{
	/* Privileged, yet refused before the verifier: containers/common's default profile (podman,
	 * CRI-O) lets bpf() only to CAP_SYS_ADMIN; containerd's and Docker's let it to CAP_BPF. */
	if ((err == EPERM || err == EACCES) && dt_privileged() && dt_bpf_filtered())
		return "a seccomp profile refuses bpf() although we hold CAP_BPF (the default of podman and "
		       "CRI-O allows it only with CAP_SYS_ADMIN): run with a profile that allows bpf to CAP_BPF "
		       "(scripts/seccomp-profile writes one) or seccomp unconfined";
	if ((err == EPERM || err == EACCES) && path == DT_PATH_FENTRY && dt_privileged()) {
		/* Seen on a 6.18 VM whose ftrace function hooks are locked:
		 * trampolines are refused before the verifier runs. */
		int fd = open("/sys/kernel/tracing/available_filter_functions", O_RDONLY);
		int ftrace_locked = fd < 0 && errno == EPERM;
		if (fd >= 0)
			close(fd);
		return ftrace_locked ?
			       "the kernel refuses fentry programs although we are privileged: BPF trampolines "
			       "are blocked here (ftrace's function hooks are locked too): use --attach tracepoint" :
			       "the kernel refuses fentry programs although we are privileged (lockdown, an LSM, "
			       "or no BPF trampoline support): use --attach tracepoint, or --verbose for libbpf's log";
	}
	switch (err) {
	case EPERM:
	case EACCES:
		return "the kernel refused to load the BPF program: run as root, or grant CAP_BPF and "
		       "CAP_PERFMON (CAP_SYS_ADMIN before 5.8); if you are root, the verifier rejected it: "
		       "rerun with --verbose for its log";
	case ENOMEM:
		return "the kernel could not allocate the BPF maps: raise the locked-memory limit "
		       "(ulimit -l unlimited) or shrink --ring-size";
	case E2BIG:
	case EINVAL:
		return "the kernel's verifier rejected the program: rerun with --verbose for its log";
	default:
		return NULL;
	}
}

/* One attempt at one path; fills err and returns negative on failure. */
static int dt_try(const struct dt_config *cfg, const struct dt_kernel *k, enum dt_path path,
		  struct dt_tracer *t, struct dt_error *err)
{
	struct droptrace_bpf *skel;
	struct bpf_program *prog;
	int ret;

	skel = droptrace_bpf__open();
	if (!skel)
		return dt_fail(err, errno, "open", "opening the embedded BPF object failed");

	switch (path) {
	case DT_PATH_TP_BTF:
		prog = skel->progs.droptrace_tp;
		break;
	case DT_PATH_RAW_TP:
		prog = skel->progs.droptrace_raw;
		break;
	case DT_PATH_FENTRY:
		prog = skel->progs.droptrace_fent;
		break;
	default:
		prog = skel->progs.droptrace_kp;
		break;
	}

	bpf_program__set_autoload(skel->progs.droptrace_tp, prog == skel->progs.droptrace_tp);
	bpf_program__set_autoload(skel->progs.droptrace_raw, prog == skel->progs.droptrace_raw);
	bpf_program__set_autoload(skel->progs.droptrace_fent, prog == skel->progs.droptrace_fent);
	bpf_program__set_autoload(skel->progs.droptrace_kp, prog == skel->progs.droptrace_kp);
	dt_configure(skel, cfg, k);

	if (prog == skel->progs.droptrace_fent) {
		skel->rodata->targ_fn_addr = dt_ksym_addr(k->fn_name);
		ret = bpf_program__set_attach_target(prog, 0, k->fn_name);
		if (ret) {
			droptrace_bpf__destroy(skel);
			return dt_fail(err, ret, "open", "fentry cannot target %s", k->fn_name);
		}
	}

	/* the verifier abandons a check with EAGAIN when a signal is pending (a
	 * profiler's SIGPROF every millisecond, a terminal resize): hold signals
	 * for the few tens of milliseconds it runs */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = droptrace_bpf__load(skel);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		int e = -ret;
		droptrace_bpf__destroy(skel);
		const char *sentence = dt_load_sentence(e, path);
		if (sentence)
			return dt_fail(err, e, "load", "%s", sentence);
		return dt_fail(err, e, "load", "loading the %s program failed: %s (rerun with --verbose for libbpf's log)", dt_path_names[path],
			       strerror(e));
	}

	if (prog == skel->progs.droptrace_kp)
		t->link = bpf_program__attach_kprobe(prog, false, k->fn_name);
	else
		t->link = bpf_program__attach(prog);
	if (!t->link) {
		int e = errno;
		droptrace_bpf__destroy(skel);
		return dt_fail(err, e, "attach", "attaching the %s program failed (%s)", dt_path_names[path], strerror(e));
	}
	t->skel = skel;
	t->prog = prog;
	t->path = dt_path_names[path];
	t->target = (prog == skel->progs.droptrace_fent || prog == skel->progs.droptrace_kp) ?
			    k->fn_name : "skb:kfree_skb";
	return 0;
}

#ifdef DT_RING_LIBBPF
static int dt_copy_record(void *ctx, void *data, size_t size)
{
	struct dt_copy *c = ctx;

	if (size >= c->rec_size)
		memcpy(c->buf + c->n++ * c->rec_size, data, c->rec_size);
	return c->n == c->cap ? -E2BIG : 0; /* full: libbpf stops after this record */
}
#endif

static int dt_ring_open(struct dt_ring *r, int map_fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	/*
	 * Edge-triggered: the ring's fd is readable whenever any record waits, so
	 * a level-triggered wait returns at once under a flood and the reader
	 * spins on dribbles. An edge is a wakeup the program chose to send.
	 */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	void *p;

	r->epfd = -1;
	r->stopfd = -1;
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return -errno;
	r->page = (size_t)sysconf(_SC_PAGESIZE);
	r->data_size = info.max_entries;
	r->mask = info.max_entries - 1;
	p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->consumer_pos = p;
	p = mmap(NULL, r->page + 2 * r->data_size, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page);
	if (p == MAP_FAILED) {
		int e = -errno;
		munmap(r->consumer_pos, r->page);
		r->consumer_pos = NULL;
		return e;
	}
	r->producer_pos = p;
	r->data = (unsigned char *)p + r->page;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, map_fd, &ev))
		return -errno;
	struct epoll_event sev = { .events = EPOLLIN, .data.u32 = 1 };
	r->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->stopfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->stopfd, &sev))
		return -errno;
#ifdef DT_RING_LIBBPF
	r->rb = ring_buffer__new(map_fd, dt_copy_record, &r->copy, NULL);
	if (!r->rb)
		return -errno;
#endif
	return 0;
}

static void dt_ring_close(struct dt_ring *r)
{
	if (!r->data_size)
		return; /* never opened */
#ifdef DT_RING_LIBBPF
	ring_buffer__free(r->rb);
#endif
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->stopfd >= 0)
		close(r->stopfd);
	if (r->producer_pos)
		munmap(r->producer_pos, r->page + 2 * r->data_size);
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page);
	memset(r, 0, sizeof(*r));
	r->epfd = -1;
	r->stopfd = -1;
}

/* Copies up to cap committed records into buf; returns how many. */
static size_t dt_ring_drain(struct dt_ring *r, unsigned char *buf, size_t cap, size_t rec_size)
{
#ifdef DT_RING_LIBBPF
	r->copy = (struct dt_copy){ .buf = buf, .cap = cap, .n = 0, .rec_size = rec_size };
	ring_buffer__consume(r->rb);
	return r->copy.n;
#else
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	size_t n = 0;

	while (cons < prod && n < cap) {
		__u32 *hdr = (__u32 *)(r->data + (cons & r->mask));
		__u32 len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

		if (len & BPF_RINGBUF_BUSY_BIT)
			break; /* reserved, not yet submitted: it comes next time */
		cons += (((len & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ) + 7) & ~7UL;
		if (len & BPF_RINGBUF_DISCARD_BIT || len < rec_size)
			continue; /* the program submits whole events only */
		memcpy(buf + n * rec_size, (unsigned char *)hdr + BPF_RINGBUF_HDR_SZ, rec_size);
		n++;
	}
	__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
#endif
}

int dt_tracer_open(const struct dt_config *cfg, struct dt_tracer **out, struct dt_error *err,
		   char *tried, size_t tried_len)
{
	struct dt_kernel k;
	enum dt_path paths[4];
	int npaths = 0, i, ret = 0;
	struct dt_tracer *t;

	memset(err, 0, sizeof(*err));
	if (tried_len)
		tried[0] = 0;
	*out = NULL;
	/* what the program's memory safety rests on, whatever the caller sent */
	if (cfg->settings.hot_mask >= DT_HOT_SLOTS || (cfg->settings.hot_mask & (cfg->settings.hot_mask + 1)))
		return dt_fail(err, EINVAL, "open", "hot_mask must be a power of two minus one, below %d", DT_HOT_SLOTS);
	if (cfg->settings.snaplen > DT_MAX_SNAPLEN || cfg->settings.snaplen % 8)
		return dt_fail(err, EINVAL, "open", "snaplen must be a multiple of 8, at most %d", DT_MAX_SNAPLEN);

	if (dt_probe_kernel(&k) || !k.has_btf)
		return dt_fail(err, ENOENT, "open",
			       "this kernel has no BTF at /sys/kernel/btf/vmlinux (it needs CONFIG_DEBUG_INFO_BTF=y, "
			       "5.4 or newer): droptrace's CO-RE program cannot be placed without it");

	switch (cfg->attach) {
	case DT_ATTACH_TRACEPOINT:
		paths[npaths++] = DT_PATH_TP_BTF;
		paths[npaths++] = DT_PATH_RAW_TP;
		break;
	case DT_ATTACH_TP_BTF:
		paths[npaths++] = DT_PATH_TP_BTF;
		break;
	case DT_ATTACH_RAW_TP:
		paths[npaths++] = DT_PATH_RAW_TP;
		break;
	case DT_ATTACH_FENTRY:
		paths[npaths++] = DT_PATH_FENTRY;
		break;
	case DT_ATTACH_KPROBE:
		paths[npaths++] = DT_PATH_KPROBE;
		break;
	default:
		paths[npaths++] = DT_PATH_TP_BTF;
		paths[npaths++] = DT_PATH_RAW_TP;
		paths[npaths++] = DT_PATH_FENTRY;
		paths[npaths++] = DT_PATH_KPROBE;
	}

	t = calloc(1, sizeof(*t));
	if (!t)
		return dt_fail(err, ENOMEM, "open", "out of memory");

	/* When every path fails, the headline is the first that failed for a reason other than
	 * an absent feature: the preferred path's refusal says more than "no kprobes" at the end. */
	struct { int err; const char *phase; char msg[sizeof(err->msg)]; } headline = { 0 };
	dt_log_begin(err, cfg->verbose);
	for (i = 0; i < npaths; i++) {
		enum dt_path p = paths[i];
		if (p == DT_PATH_TP_BTF && !k.has_tp_btf) {
			ret = dt_fail(err, ENOENT, "open", "the kernel's BTF has no skb:kfree_skb tracepoint type");
		} else if ((p == DT_PATH_FENTRY || p == DT_PATH_KPROBE) && k.fn_kind < 0) {
			ret = dt_fail(err, ENOENT, "open", "the kernel has none of sk_skb_reason_drop, "
							   "kfree_skb_reason or kfree_skb to hook");
		} else if (p == DT_PATH_KPROBE && !k.has_kprobes) {
			ret = dt_fail(err, EOPNOTSUPP, "attach",
				      "this kernel has no kprobes (built without CONFIG_KPROBES): "
				      "use --attach tracepoint or --attach fentry");
		} else {
			/* the verifier gives up with EAGAIN when a signal arrives mid-check
			 * (a profiler's SIGPROF, a terminal resize): that is worth retrying */
			int attempt = 0;
			do
				ret = dt_try(cfg, &k, p, t, err);
			while (ret == -EAGAIN && ++attempt < 20);
		}
		if (!ret)
			break;
		if (tried_len) {
			size_t used = strlen(tried);
			snprintf(tried + used, tried_len - used, "%s%s: %s", used ? "; " : "", dt_path_names[p], err->msg);
		}
		if (!headline.err && err->err != ENOENT && err->err != EOPNOTSUPP) {
			headline.err = err->err;
			headline.phase = err->phase;
			memcpy(headline.msg, err->msg, sizeof(headline.msg));
		}
		/* without privileges, or with bpf() filtered, the next path will not fare better */
		if (err->err == EPERM && (!dt_privileged() || dt_bpf_filtered()))
			break;
	}
	dt_log_end();
	if (ret) {
		if (headline.err) {
			err->err = headline.err;
			err->phase = headline.phase;
			memcpy(err->msg, headline.msg, sizeof(err->msg));
			ret = -headline.err;
		}
		free(t);
		return ret;
	}

	t->rec_size = sizeof(struct dt_event) + cfg->settings.snaplen;
	if (cfg->settings.emit_events) {
		int rerr = dt_ring_open(&t->ring, bpf_map__fd(t->skel->maps.dt_events));
		if (rerr) {
			int e = -rerr;
			dt_tracer_close(t);
			return dt_fail(err, e, "open", "creating the ring-buffer reader failed (%s)", strerror(e));
		}
	}
	err->log[0] = 0;
	*out = t;
	return 0;
}

const char *dt_tracer_path(const struct dt_tracer *t) { return t->path; }
size_t dt_tracer_record_size(const struct dt_tracer *t) { return t->rec_size; }

int dt_tracer_stack(struct dt_tracer *t, int32_t id, uint64_t *ips)
{
	__u64 frames[DT_STACK_DEPTH] = {};
	__u32 key = (__u32)id;
	int n = 0;

	if (id < 0 || bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.dt_stacks), &key, frames))
		return 0;
	while (n < DT_STACK_DEPTH && frames[n]) {
		ips[n] = frames[n];
		n++;
	}
	return n;
}
const char *dt_tracer_target(const struct dt_tracer *t) { return t->target; }

/* bytes committed or reserved in the ring and not yet consumed */
static unsigned long dt_ring_avail(const struct dt_ring *r)
{
	return __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE) - __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
}

/* the longest an idle reader sleeps without a drop or an interrupt */
#define DT_IDLE_WAIT_MS 1000

/* how long the reader sleeps between drains while a flood lasts */
#define DT_FLOOD_SLEEP_NS (4 * 1000 * 1000)

int dt_tracer_poll(struct dt_tracer *t, void *buf, size_t cap, int timeout_ms)
{
	unsigned long batch = t->skel->rodata->CFG.wakeup_bytes;
	struct epoll_event ev;
	size_t n;

	if (!t->ring.data_size)
		return -EINVAL;
	if (!batch) {
		/*
		 * No threshold configured: the program leaves wakeups to the kernel,
		 * which sends one with the first record after the reader caught up.
		 */
		n = dt_ring_drain(&t->ring, buf, cap, t->rec_size);
		if (n || timeout_ms <= 0)
			return (int)n;
		if (epoll_wait(t->ring.epfd, &ev, 1, timeout_ms) < 0 && errno != EINTR)
			return -errno;
		return (int)dt_ring_drain(&t->ring, buf, cap, t->rec_size);
	}
	/*
	 * A batch is waiting (the reader fell behind, or was woken for it): take
	 * it now. Less than a batch is left for later: under a flood, draining
	 * whatever trickled in since the last drain made batches of a few dozen
	 * records, each a handoff to JS and a context switch (17k a second).
	 */
	if (timeout_ms <= 0 || dt_ring_avail(&t->ring) >= batch)
		return (int)dt_ring_drain(&t->ring, buf, cap, t->rec_size);
	/*
	 * While a flood lasts, sleep a few ms and drain, without asking the drop
	 * path for a wakeup: the program's wakeup is an IRQ-work interrupt on the
	 * CPU that drops (a VM exit here), ~60-80 ns per drop amortized over a
	 * 64 KiB batch; a timer on the reader's own CPU costs the drop path
	 * nothing. The flood is over when a sleep brings less than a quarter
	 * batch: back to the armed wait.
	 */
	if (t->flooding) {
		struct timespec ts = { 0, DT_FLOOD_SLEEP_NS };
		nanosleep(&ts, NULL);
		t->flooding = dt_ring_avail(&t->ring) >= batch / 4;
		return (int)dt_ring_drain(&t->ring, buf, cap, t->rec_size);
	}
	/*
	 * Ask the drop that completes a batch to wake us, then look once more for
	 * a batch completed before the flag was seen.
	 */
	__atomic_store_n(&t->skel->bss->dt_reader_armed, 1, __ATOMIC_SEQ_CST);
	if (dt_ring_avail(&t->ring) == 0) {
		/*
		 * Idle: sleep until the first drop (the program wakes an armed reader
		 * for a record that lands in an empty ring) or dt_tracer_interrupt(),
		 * so an idle tracer costs no CPU. The second's timeout is for two
		 * CPUs' records landing in the empty ring at once, which neither sees
		 * as the first.
		 */
		if (epoll_wait(t->ring.epfd, &ev, 1, DT_IDLE_WAIT_MS) < 0 && errno != EINTR)
			return -errno;
		if (dt_ring_avail(&t->ring) == 0)
			return 0; /* interrupted, or a quiet second: the caller looks at why */
		__atomic_store_n(&t->skel->bss->dt_reader_armed, 1, __ATOMIC_SEQ_CST);
	}
	/*
	 * Something is queued: gather a batch for at most timeout_ms (a lone drop
	 * arrives within it); the drop that completes a batch wakes us sooner,
	 * and a wakeup for a full batch means a flood has begun.
	 */
	if (dt_ring_avail(&t->ring) < batch &&
	    epoll_wait(t->ring.epfd, &ev, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	t->flooding = dt_ring_avail(&t->ring) >= batch;
	n = dt_ring_drain(&t->ring, buf, cap, t->rec_size);
	return (int)n;
}

void dt_tracer_interrupt(struct dt_tracer *t)
{
	uint64_t one = 1;

	if (t && t->ring.data_size && t->ring.stopfd >= 0 && write(t->ring.stopfd, &one, sizeof(one)) < 0) {
		/* the counter is already set (EAGAIN): the reader will see it */
	}
}

static int dt_rec_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct dt_count_rec *)a)->key, &((const struct dt_count_rec *)b)->key,
		      sizeof(struct dt_count_key));
}

/* A growing array of count records. */
struct dt_recs {
	struct dt_count_rec *v;
	size_t len, cap;
};

/* Room for one more record at the end; NULL when memory ran out. */
static struct dt_count_rec *dt_recs_push(struct dt_recs *r)
{
	if (r->len == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;
		void *grown = realloc(r->v, cap * sizeof(*r->v));
		if (!grown)
			return NULL;
		r->v = grown;
		r->cap = cap;
	}
	return &r->v[r->len++];
}

/*
 * Adds the hot slots in use (see DT_HOT_SLOTS) to the records read from the
 * hash, then sums records with the same key: each key is in one place per
 * CPU, but on different CPUs it may be in a slot on one and the hash on another.
 */
static int dt_add_hot(struct dt_tracer *t, struct dt_recs *out, int ncpu)
{
	int fd = bpf_map__fd(t->skel->maps.dt_hot);
	struct dt_count_rec *vals = calloc(ncpu, sizeof(*vals)), *rec;
	size_t w = 0;

	if (!vals)
		return -ENOMEM;
	for (__u32 slot = 0; slot < DT_HOT_SLOTS; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, vals))
			continue;
		for (int c = 0; c < ncpu; c++) {
			if (!vals[c].key.location || !vals[c].val.packets)
				continue; /* free, or being claimed right now: its first drop shows next time */
			if (!(rec = dt_recs_push(out))) {
				free(vals);
				return -ENOMEM;
			}
			*rec = vals[c];
		}
	}
	free(vals);
	qsort(out->v, out->len, sizeof(*out->v), dt_rec_cmp);
	for (size_t r = 0; r < out->len; r++) {
		if (w && !dt_rec_cmp(&out->v[w - 1], &out->v[r])) {
			out->v[w - 1].val.packets += out->v[r].val.packets;
			out->v[w - 1].val.bytes += out->v[r].val.bytes;
		} else {
			out->v[w++] = out->v[r];
		}
	}
	out->len = w;
	return 0;
}

/* Appends key with the sum of its per-CPU values. */
static int dt_recs_push_sum(struct dt_recs *out, const struct dt_count_key *key, const struct dt_count_val *vals, int ncpu)
{
	struct dt_count_rec *rec = dt_recs_push(out);

	if (!rec)
		return -ENOMEM;
	rec->key = *key;
	rec->val.packets = 0;
	rec->val.bytes = 0;
	for (int c = 0; c < ncpu; c++) {
		rec->val.packets += vals[c].packets;
		rec->val.bytes += vals[c].bytes;
	}
	return 0;
}

int dt_tracer_counts(struct dt_tracer *t, struct dt_count_rec **recs, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.dt_counts);
	int ncpu = libbpf_num_possible_cpus();
	struct dt_recs out = {};
	struct dt_count_key key, next;
	struct dt_count_val *vals;
	void *prev = NULL;
	int ret = 0;

	if (ncpu <= 0)
		return ncpu;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue; /* removed meanwhile */
		if ((ret = dt_recs_push_sum(&out, &key, vals, ncpu)))
			break;
	}
	free(vals);
	if (!ret)
		ret = dt_add_hot(t, &out, ncpu);
	if (!ret && !out.v && !(out.v = malloc(sizeof(*out.v))))
		ret = -ENOMEM; /* no drops yet: still a real (empty) buffer for the caller to free */
	if (ret) {
		free(out.v);
		return ret;
	}
	*recs = out.v;
	*n = out.len;
	return 0;
}

int dt_tracer_forget(struct dt_tracer *t, const struct dt_count_key *keys, size_t n, struct dt_count_rec **recs, size_t *nout)
{
	int fd = bpf_map__fd(t->skel->maps.dt_counts);
	int ncpu = libbpf_num_possible_cpus();
	struct dt_recs out = {};
	struct dt_count_val *vals;
	int ret = 0;

	if (ncpu <= 0)
		return ncpu;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		/*
		 * Lookup-and-delete (per-CPU hashes since 5.14) takes the final values in the same
		 * step: a drop counted between a read and the delete is not lost. Older kernels
		 * refuse it: read, then delete; a drop landing in between is lost, which is why
		 * callers forget only keys that have been idle for a long while.
		 */
		if (bpf_map_lookup_and_delete_elem(fd, &keys[i], vals)) {
			if (errno == ENOENT)
				continue;
			if (bpf_map_lookup_elem(fd, &keys[i], vals) || bpf_map_delete_elem(fd, &keys[i]))
				continue;
		}
		if ((ret = dt_recs_push_sum(&out, &keys[i], vals, ncpu)))
			break;
	}
	free(vals);
	if (ret) {
		free(out.v);
		return ret;
	}
	*recs = out.v;
	*nout = out.len;
	return 0;
}

uint64_t dt_tracer_missed(struct dt_tracer *t)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (!t->prog || bpf_obj_get_info_by_fd(bpf_program__fd(t->prog), &info, &len))
		return 0;
	return info.recursion_misses; /* 0 before 5.12, which does not count them */
}

int dt_tracer_stats(struct dt_tracer *t, uint64_t out[DT_STAT_MAX])
{
	int fd = bpf_map__fd(t->skel->maps.dt_stats);
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;

	if (ncpu <= 0)
		return ncpu;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < DT_STAT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

void dt_tracer_detach(struct dt_tracer *t)
{
	if (t && t->link) {
		bpf_link__destroy(t->link);
		t->link = NULL;
	}
}

void dt_tracer_close(struct dt_tracer *t)
{
	if (!t)
		return;
	dt_tracer_detach(t);
	dt_ring_close(&t->ring);
	droptrace_bpf__destroy(t->skel);
	free(t);
}
