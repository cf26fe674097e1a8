// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The tracer's maps read from user space: the exact counts (the per-CPU hash, read in batches
 * where the kernel has them, and the hot slots in front of it), the loss counters, recursion
 * misses, and kernel stacks.
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

/* Keys per bpf_map_lookup_batch call: more than a hash bucket ever holds (ENOSPC otherwise). */
#define DT_BATCH 256

/*
 * The count hash in batches of DT_BATCH keys and their per-CPU values, one syscall each
 * (bpf_map_lookup_batch, 5.6+), where a key at a time costs two. A kernel without batch ops
 * answers EINVAL or ENOTSUPP: the caller then reads key by key.
 */
static int dt_counts_batched(int fd, int ncpu, struct dt_recs *out)
{
	struct dt_count_key *keys = calloc(DT_BATCH, sizeof(*keys));
	struct dt_count_val *vals = calloc((size_t)DT_BATCH * ncpu, sizeof(*vals));
	__u64 token[4] = { 0 }; /* the kernel's opaque position: a bucket index for hashes */
	int first = 1, ret = 0;

	if (!keys || !vals) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = DT_BATCH;
		int err = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, vals, &count, NULL) ? errno : 0;

		first = 0;
		if (err && err != ENOENT) {
			ret = -err;
			break;
		}
		for (__u32 i = 0; i < count && !ret; i++)
			ret = dt_recs_push_sum(out, &keys[i], vals + (size_t)i * ncpu, ncpu);
		if (ret || err == ENOENT)
			break; /* ENOENT: the last batch */
	}
out:
	free(keys);
	free(vals);
	return ret;
}

/* The count hash a key at a time: every kernel. */
static int dt_counts_one_by_one(int fd, int ncpu, struct dt_recs *out)
{
	struct dt_count_val *vals = calloc(ncpu, sizeof(*vals));
	struct dt_count_key key, next;
	void *prev = NULL;
	int ret = 0;

	if (!vals)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue; /* removed meanwhile */
		if ((ret = dt_recs_push_sum(out, &key, vals, ncpu)))
			break;
	}
	free(vals);
	return ret;
}

int dt_tracer_counts(struct dt_tracer *t, struct dt_count_rec **recs, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.dt_counts);
	int ncpu = libbpf_num_possible_cpus();
	struct dt_recs out = {};
	int ret;

	if (ncpu <= 0)
		return ncpu;
	ret = dt_counts_batched(fd, ncpu, &out);
	if (ret && ret != -ENOMEM) {
		out.len = 0; /* whatever a failed batch read gave is read again */
		ret = dt_counts_one_by_one(fd, ncpu, &out);
	}
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

int dt_tracer_traps(struct dt_tracer *t, struct dt_trap_rec **recs, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.dt_traps);
	size_t cap = bpf_map__max_entries(t->skel->maps.dt_traps);
	struct dt_trap_key key, next;
	struct dt_trap_rec *v;
	void *prev = NULL;
	size_t len = 0;

	/* the map holds at most cap entries (1 where traps are not counted): one allocation, never empty */
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* read after detach too (the final snapshot): the map outlives the link */
	while (len < cap && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v[len].val))
			continue; /* entries are never removed; a failed read is skipped */
		v[len++].key = key;
	}
	*recs = v;
	*n = len;
	return 0;
}
