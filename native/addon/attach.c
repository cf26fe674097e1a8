// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Linear loader in the libbpf-bootstrap style: open → configure → load →
 * attach, one message per phase; a failed attempt destroys its skeleton
 * before it returns, dt_tracer_close() undoes a success. Tries attach paths
 * best first and remembers why each better one failed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "tracer.h"

const char *const dt_path_names[] = {
	[DT_PATH_TP_BTF] = "tp_btf",
	[DT_PATH_RAW_TP] = "raw_tp",
	[DT_PATH_FENTRY] = "fentry",
	[DT_PATH_KPROBE] = "kprobe",
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

/* Before load: the globals the kernel probe decides, the user's settings in one assignment, the maps' sizes. */
static void dt_prepare(struct droptrace_bpf *skel, const struct dt_config *cfg, const struct dt_kernel *k)
{
	struct droptrace_bpf__rodata *ro = skel->rodata;

	ro->targ_tp_has_reason = k->tp_has_reason;
	ro->targ_tp_has_rx_sk = k->tp_has_rx_sk;
	ro->targ_fn_kind = k->fn_kind < 0 ? DT_FN_KFREE_SKB : k->fn_kind;
	ro->targ_consumed_reason = k->consumed_reason;
	/* a qdisc's own reason, joined to its skb's free: only where both exist */
	ro->targ_qdisc_drop_reason = k->has_qdisc_drop ? k->qdisc_drop_reason : -1;
	if (ro->targ_qdisc_drop_reason >= 0)
		bpf_map__set_max_entries(skel->maps.dt_qdisc_reasons, 4096);
	if (bpf_program__autoload(skel->progs.droptrace_trap) || bpf_program__autoload(skel->progs.droptrace_trap_raw))
		bpf_map__set_max_entries(skel->maps.dt_traps, DT_TRAP_ENTRIES);
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
	/* skbs followed at once: 7 MB of LRU hash; the least recently stepped go first */
	if (cfg->settings.pkt_path)
		bpf_map__set_max_entries(skel->maps.dt_pkt_paths, 4096);
}

/* The two programs of each path tracepoint, in dt_pkt_path_tps order: tp_btf, raw_tp. */
static void dt_pkt_path_progs(struct droptrace_bpf *skel, struct bpf_program *btf[DT_PKT_PATH_TPS],
			      struct bpf_program *raw[DT_PKT_PATH_TPS])
{
	int i = 0;
#define DT_PP_PROGS(tp)                               \
	btf[i] = skel->progs.droptrace_path_##tp;     \
	raw[i++] = skel->progs.droptrace_path_raw_##tp;
	DT_PKT_PATH_TP_LIST(DT_PP_PROGS)
#undef DT_PP_PROGS
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

/* The skeleton's program for a path, the only one left to load. */
static struct bpf_program *dt_pick(struct droptrace_bpf *skel, enum dt_path path)
{
	struct bpf_program *progs[] = {
		[DT_PATH_TP_BTF] = skel->progs.droptrace_tp,
		[DT_PATH_RAW_TP] = skel->progs.droptrace_raw,
		[DT_PATH_FENTRY] = skel->progs.droptrace_fent,
		[DT_PATH_KPROBE] = skel->progs.droptrace_kp,
	};

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		bpf_program__set_autoload(progs[i], i == (size_t)path);
	return progs[path];
}

/* The program of each skb position (--path functions): kprobe-multi, or one kprobe per function. */
static void dt_fn_progs(struct droptrace_bpf *skel, struct bpf_program *fn[DT_FN_POSITIONS], int multi)
{
	fn[0] = multi ? skel->progs.droptrace_path_fn1 : skel->progs.droptrace_path_kp1;
	fn[1] = multi ? skel->progs.droptrace_path_fn2 : skel->progs.droptrace_path_kp2;
	fn[2] = multi ? skel->progs.droptrace_path_fn3 : skel->progs.droptrace_path_kp3;
	fn[3] = multi ? skel->progs.droptrace_path_fn4 : skel->progs.droptrace_path_kp4;
	fn[4] = multi ? skel->progs.droptrace_path_fn5 : skel->progs.droptrace_path_kp5;
}

/*
 * --path: the flavour of the drop program (tp_btf where BTF-typed pointers work, raw_tp beside
 * a kprobe), for each tracepoint the kernel has; none without --path.
 */
static void dt_pick_pkt_path(struct droptrace_bpf *skel, const struct dt_config *cfg, const struct dt_kernel *k,
			     enum dt_path path)
{
	struct bpf_program *btf[DT_PKT_PATH_TPS], *raw[DT_PKT_PATH_TPS];
	int typed = path != DT_PATH_RAW_TP && path != DT_PATH_KPROBE;

	dt_pkt_path_progs(skel, btf, raw);
	for (int i = 0; i < DT_PKT_PATH_TPS; i++) {
		int on = cfg->settings.pkt_path && (k->pkt_path_tps >> i & 1);
		bpf_program__set_autoload(btf[i], on && typed);
		bpf_program__set_autoload(raw[i], on && !typed);
	}
	struct bpf_program *multi[DT_FN_POSITIONS], *single[DT_FN_POSITIONS];
	int functions = cfg->settings.pkt_path == DT_PKT_PATH_FUNCTIONS;
	dt_fn_progs(skel, multi, 1);
	dt_fn_progs(skel, single, 0);
	for (int p = 0; p < DT_FN_POSITIONS; p++) {
		bpf_program__set_autoload(multi[p], functions && k->has_kprobe_multi);
		bpf_program__set_autoload(single[p], functions && !k->has_kprobe_multi);
	}
}

/* Attaches the loaded path programs; a failure fails the tracer (a path with holes would mislead). */
static int dt_attach_pkt_path(struct dt_tracer *t, struct dt_error *err)
{
	struct bpf_program *btf[DT_PKT_PATH_TPS], *raw[DT_PKT_PATH_TPS];

	t->pkt_path_attached[0] = 0;
	dt_pkt_path_progs(t->skel, btf, raw);
	for (int i = 0; i < DT_PKT_PATH_TPS; i++) {
		struct bpf_program *p = bpf_program__autoload(btf[i]) ? btf[i] : bpf_program__autoload(raw[i]) ? raw[i] : NULL;
		size_t used = strlen(t->pkt_path_attached);

		if (!p)
			continue;
		t->pkt_path_links[i] = bpf_program__attach(p);
		if (!t->pkt_path_links[i])
			return dt_fail(err, errno, "attach", "attaching the --path program to the %s tracepoint failed (%s)",
				       dt_pkt_path_tps[i], strerror(errno));
		snprintf(t->pkt_path_attached + used, sizeof(t->pkt_path_attached) - used, "%s%s", used ? "," : "",
			 dt_pkt_path_tps[i]);
	}
	int multi = bpf_program__autoload(t->skel->progs.droptrace_path_fn1);
	if (multi || bpf_program__autoload(t->skel->progs.droptrace_path_kp1)) {
		struct bpf_program *fn[DT_FN_POSITIONS];
		dt_fn_progs(t->skel, fn, multi);
		return dt_attach_functions(t, fn, multi, err);
	}
	return 0;
}

/*
 * Whether trap reports can honour the filters: a trap is known by its device, port and
 * namespace (--iface, --netns apply), not by its packet's headers or a drop reason. With a
 * filter on those, counting every trap would show what the user filtered out.
 */
static int dt_traps_filterable(const struct dt_settings *s)
{
	return !s->port && !s->host_ver && !s->l4proto && !s->ethertype && !s->has_include && !s->has_exclude;
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

	prog = dt_pick(skel, path);
	dt_pick_pkt_path(skel, cfg, k, path);
	/* qdisc:qdisc_drop in the drop program's flavour (raw_tp beside a kprobe, as --path) */
	int typed = path != DT_PATH_RAW_TP && path != DT_PATH_KPROBE;
	int qdisc = k->has_qdisc_drop && k->qdisc_drop_reason >= 0;
	bpf_program__set_autoload(skel->progs.droptrace_qdisc_drop, qdisc && typed);
	bpf_program__set_autoload(skel->progs.droptrace_qdisc_drop_raw, qdisc && !typed);
	/* devlink traps likewise, where a trap can be told apart by what the filters ask */
	int traps = k->has_devlink_trap && dt_traps_filterable(&cfg->settings);
	bpf_program__set_autoload(skel->progs.droptrace_trap, traps && typed);
	bpf_program__set_autoload(skel->progs.droptrace_trap_raw, traps && !typed);
	dt_prepare(skel, cfg, k);

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
	/* not fatal: without it a qdisc drop still counts, as the bare QDISC_DROP the free says */
	if (bpf_program__autoload(skel->progs.droptrace_qdisc_drop))
		t->qdisc_link = bpf_program__attach(skel->progs.droptrace_qdisc_drop);
	else if (bpf_program__autoload(skel->progs.droptrace_qdisc_drop_raw))
		t->qdisc_link = bpf_program__attach(skel->progs.droptrace_qdisc_drop_raw);
	/* not fatal either: the drops of the stack are counted as before */
	if (bpf_program__autoload(skel->progs.droptrace_trap))
		t->trap_link = bpf_program__attach(skel->progs.droptrace_trap);
	else if (bpf_program__autoload(skel->progs.droptrace_trap_raw))
		t->trap_link = bpf_program__attach(skel->progs.droptrace_trap_raw);
	if (k->has_devlink_trap && !t->trap_link)
		t->trap_note = traps ? "attaching devlink:devlink_trap_report failed" :
				       "a trap is known by device and port, not by the packet or reason filters given";
	if ((ret = dt_attach_pkt_path(t, err))) {
		dt_tracer_detach(t);
		t->skel = NULL;
		droptrace_bpf__destroy(skel);
		return ret;
	}
	t->prog = prog;
	t->path = dt_path_names[path];
	t->target = (prog == skel->progs.droptrace_fent || prog == skel->progs.droptrace_kp) ?
			    k->fn_name : "skb:kfree_skb";
	return 0;
}

/* The paths --attach allows, best first; returns how many. */
static int dt_paths_for(int attach, enum dt_path paths[4])
{
	switch (attach) {
	case DT_ATTACH_TRACEPOINT:
		paths[0] = DT_PATH_TP_BTF;
		paths[1] = DT_PATH_RAW_TP;
		return 2;
	case DT_ATTACH_TP_BTF:
		paths[0] = DT_PATH_TP_BTF;
		return 1;
	case DT_ATTACH_RAW_TP:
		paths[0] = DT_PATH_RAW_TP;
		return 1;
	case DT_ATTACH_FENTRY:
		paths[0] = DT_PATH_FENTRY;
		return 1;
	case DT_ATTACH_KPROBE:
		paths[0] = DT_PATH_KPROBE;
		return 1;
	default:
		paths[0] = DT_PATH_TP_BTF;
		paths[1] = DT_PATH_RAW_TP;
		paths[2] = DT_PATH_FENTRY;
		paths[3] = DT_PATH_KPROBE;
		return 4;
	}
}

/* One path: refused up front when the kernel lacks what it needs, else tried. */
static int dt_try_path(const struct dt_config *cfg, const struct dt_kernel *k, enum dt_path p, struct dt_tracer *t,
		       struct dt_error *err)
{
	int ret, attempt = 0;

	if (p == DT_PATH_TP_BTF && !k->has_tp_btf)
		return dt_fail(err, ENOENT, "open", "the kernel's BTF has no skb:kfree_skb tracepoint type");
	if ((p == DT_PATH_FENTRY || p == DT_PATH_KPROBE) && k->fn_kind < 0)
		return dt_fail(err, ENOENT, "open", "the kernel has none of sk_skb_reason_drop, kfree_skb_reason or kfree_skb to hook");
	if (p == DT_PATH_KPROBE && !k->has_kprobes)
		return dt_fail(err, EOPNOTSUPP, "attach",
			       "this kernel has no kprobes (built without CONFIG_KPROBES): use --attach tracepoint or --attach fentry");
	/* the verifier gives up with EAGAIN when a signal arrives mid-check (a profiler's
	 * SIGPROF, a terminal resize): that is worth retrying */
	do
		ret = dt_try(cfg, k, p, t, err);
	while (ret == -EAGAIN && ++attempt < 20);
	return ret;
}

/*
 * Tries the paths in order until one attaches, adding why each failed to tried[]. When every
 * path fails, err is the first failure that is not an absent feature: the preferred path's
 * refusal says more than "no kprobes" at the end.
 */
static int dt_try_paths(const struct dt_config *cfg, const struct dt_kernel *k, const enum dt_path *paths, int n,
			struct dt_tracer *t, struct dt_error *err, char *tried, size_t tried_len)
{
	struct dt_error headline = { 0 };
	int ret = -ENOENT;

	for (int i = 0; i < n; i++) {
		ret = dt_try_path(cfg, k, paths[i], t, err);
		if (!ret)
			return 0;
		if (tried_len) {
			size_t used = strlen(tried);
			snprintf(tried + used, tried_len - used, "%s%s: %s", used ? "; " : "", dt_path_names[paths[i]], err->msg);
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
	if (headline.err) {
		err->err = headline.err;
		err->phase = headline.phase;
		memcpy(err->msg, headline.msg, sizeof(err->msg));
		ret = -headline.err;
	}
	return ret;
}

int dt_tracer_open(const struct dt_config *cfg, struct dt_tracer **out, struct dt_error *err,
		   char *tried, size_t tried_len)
{
	struct dt_kernel k;
	enum dt_path paths[4];
	struct dt_tracer *t;
	int ret;

	memset(err, 0, sizeof(*err));
	if (tried_len)
		tried[0] = 0;
	*out = NULL;
	/* what the program's memory safety rests on, whatever the caller sent */
	if (cfg->settings.hot_mask >= DT_HOT_SLOTS || (cfg->settings.hot_mask & (cfg->settings.hot_mask + 1)))
		return dt_fail(err, EINVAL, "open", "hot_mask must be a power of two minus one, below %d", DT_HOT_SLOTS);
	if (cfg->settings.snaplen > DT_MAX_SNAPLEN || cfg->settings.snaplen % 8)
		return dt_fail(err, EINVAL, "open", "snaplen must be a multiple of 8, at most %d", DT_MAX_SNAPLEN);
	if (cfg->settings.pkt_path > DT_PKT_PATH_FUNCTIONS)
		return dt_fail(err, EINVAL, "open", "pkt_path must be one of DT_PKT_PATH_*");
	if (dt_probe_kernel(&k) || !k.has_btf)
		return dt_fail(err, ENOENT, "open",
			       "this kernel has no BTF at /sys/kernel/btf/vmlinux (it needs CONFIG_DEBUG_INFO_BTF=y, "
			       "5.4 or newer): droptrace's CO-RE program cannot be placed without it");
	if (cfg->settings.pkt_path == DT_PKT_PATH_FUNCTIONS && (!k.has_kprobes || (!k.has_kprobe_multi && !k.kprobe_func_ip)))
		return dt_fail(err, EOPNOTSUPP, "open",
			       "--path functions hooks every kernel function that takes the skb with kprobes, which this "
			       "kernel cannot (%s): use --path, which needs tracepoints only",
			       !k.has_kprobes ? "no kprobes: built without CONFIG_KPROBES" :
						"no kprobe-multi (5.18+, CONFIG_FPROBE) and no bpf_get_func_ip in kprobes (5.15+)");
	if (!(t = calloc(1, sizeof(*t))))
		return dt_fail(err, ENOMEM, "open", "out of memory");

	dt_log_begin(err, cfg->verbose);
	ret = dt_try_paths(cfg, &k, paths, dt_paths_for(cfg->attach, paths), t, err, tried, tried_len);
	dt_log_end();
	if (ret) {
		free(t);
		return ret;
	}
	t->rec_size = sizeof(struct dt_event) + cfg->settings.snaplen +
		      (cfg->settings.pkt_path ? sizeof(struct dt_pkt_path) : 0);
	if (cfg->settings.emit_events && (ret = dt_ring_open(&t->ring, bpf_map__fd(t->skel->maps.dt_events)))) {
		dt_tracer_close(t);
		return dt_fail(err, ret, "open", "creating the ring-buffer reader failed (%s)", strerror(-ret));
	}
	err->log[0] = 0;
	*out = t;
	return 0;
}

const char *dt_tracer_path(const struct dt_tracer *t) { return t->path; }
size_t dt_tracer_record_size(const struct dt_tracer *t) { return t->rec_size; }

void dt_tracer_detach(struct dt_tracer *t)
{
	if (!t)
		return;
	if (t->link) {
		bpf_link__destroy(t->link);
		t->link = NULL;
	}
	for (int i = 0; i < DT_PKT_PATH_TPS; i++) {
		bpf_link__destroy(t->pkt_path_links[i]);
		t->pkt_path_links[i] = NULL;
	}
	bpf_link__destroy(t->qdisc_link);
	t->qdisc_link = NULL;
	bpf_link__destroy(t->trap_link);
	t->trap_link = NULL;
	dt_detach_functions(t);
}

const char *dt_tracer_pkt_path_tps(const struct dt_tracer *t) { return t->pkt_path_attached; }
int dt_tracer_qdisc_reasons(const struct dt_tracer *t) { return t->qdisc_link != NULL; }
int dt_tracer_traps_attached(const struct dt_tracer *t) { return t->trap_link != NULL; }
const char *dt_tracer_traps_note(const struct dt_tracer *t) { return t->trap_note ? t->trap_note : ""; }
size_t dt_tracer_fn_count(const struct dt_tracer *t) { return t->fn_count; }
size_t dt_tracer_fn_skipped(const struct dt_tracer *t) { return t->fn_skipped; }
int dt_tracer_fn_multi(const struct dt_tracer *t) { return t->fn_links[0] || t->fn_links[1] || t->fn_links[2] || t->fn_links[3] || t->fn_links[4]; }
double dt_tracer_fn_attach_ms(const struct dt_tracer *t) { return t->fn_attach_ms; }

void dt_tracer_close(struct dt_tracer *t)
{
	if (!t)
		return;
	dt_tracer_detach(t);
	dt_ring_close(&t->ring);
	droptrace_bpf__destroy(t->skel);
	free(t);
}
