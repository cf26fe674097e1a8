// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Events blocks written where the ring is drained: under a flood, a batch that goes to the file
 * from the reader thread costs no handoff to the JavaScript thread, no garbage and no wakeup of
 * the event loop. What a batch must be checked for is what the recorder (recorder.ts) describes:
 * its locations, interfaces (by namespace), stacks and receiving sockets' cgroups.
 */
#include <errno.h>
#include <endian.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include <zlib.h>
#include <linux/types.h>
#include "droptrace.h"
#include "record_writer.h"

#define DT_KEYSET_MIN 1024

static int keyset_grow(struct dt_keyset *s)
{
	size_t n = s->slots ? (s->mask + 1) * 2 : DT_KEYSET_MIN;
	uint64_t *slots = calloc(n, sizeof(*slots));
	struct dt_keyset g = { slots, n - 1, 0, s->zero };

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; s->slots && i <= s->mask; i++) {
		uint64_t k = s->slots[i];
		if (!k)
			continue;
		size_t j = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & g.mask;
		while (g.slots[j])
			j = (j + 1) & g.mask;
		g.slots[j] = k;
		g.used++;
	}
	free(s->slots);
	*s = g;
	return 0;
}

/* 1 when k was not in the set (it is now), 0 when it was, -ENOMEM */
static int keyset_add(struct dt_keyset *s, uint64_t k)
{
	size_t j;

	if (!k) {
		/* 0 marks a free slot: the key 0 has a flag of its own */
		int fresh = !s->zero;
		s->zero = 1;
		return fresh;
	}
	if (s->used * 2 >= s->mask && keyset_grow(s))
		return -ENOMEM;
	j = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & s->mask;
	while (s->slots[j]) {
		if (s->slots[j] == k)
			return 0;
		j = (j + 1) & s->mask;
	}
	s->slots[j] = k;
	s->used++;
	return 1;
}

int dt_record_writer_open(struct dt_record_writer *w, int fd, size_t rec_size)
{
	memset(w, 0, sizeof(*w));
	w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (w->fd < 0)
		return -errno;
	w->rec_size = rec_size;
	return 0;
}

void dt_record_writer_close(struct dt_record_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	for (int i = 0; i < DT_KEY_KINDS; i++)
		free(w->keys[i].slots);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

/* each key of a record: fresh when one is new; a set that cannot grow ends the look (-ENOMEM) */
#define ADD(set, key)                                                   \
	do {                                                            \
		int r_ = keyset_add(&w->keys[set], key);                \
		if (r_ < 0)                                             \
			return r_;                                      \
		fresh |= r_;                                            \
	} while (0)

int dt_record_writer_new(struct dt_record_writer *w, const void *recs, size_t n)
{
	const unsigned char *p = recs;
	int fresh = 0;

	for (size_t i = 0; i < n; i++, p += w->rec_size) {
		const struct dt_event *e = (const struct dt_event *)p;
		uint64_t iface = ((uint64_t)e->netns << 32) | e->ifindex;

		if (!w->primed || e->location != w->last_location) {
			w->last_location = e->location;
			ADD(DT_KEY_LOCATION, e->location);
		}
		if (!w->primed || iface != w->last_iface) {
			w->last_iface = iface;
			w->primed = 1;
			ADD(DT_KEY_IFACE, iface);
		}
		if (e->stack_id >= 0)
			ADD(DT_KEY_STACK, (uint64_t)e->stack_id);
		if ((e->flags & DT_F_RX_SK) && e->sk_cgroup)
			ADD(DT_KEY_CGROUP, e->sk_cgroup);
		if (e->flags & DT_F_PATH) {
			/* --path: the route's functions, the functions the skb passed, the namespaces it crossed (0: none) */
			const struct dt_pkt_path *path = (const struct dt_pkt_path *)(p + w->rec_size - sizeof(*path));
			uint32_t kept = path->steps < DT_STEPS ? path->steps : DT_STEPS;

			if (path->dst_input)
				ADD(DT_KEY_LOCATION, path->dst_input);
			if (path->dst_output)
				ADD(DT_KEY_LOCATION, path->dst_output);
			for (uint32_t j = 0; j < kept; j++) {
				if (path->step[j].fn)
					ADD(DT_KEY_LOCATION, path->step[j].fn);
				/* up to 32 steps a record, most in the namespace of the step before */
				if (j == 0 || path->step[j].netns != path->step[j - 1].netns)
					ADD(DT_KEY_NETNS, path->step[j].netns);
			}
		}
	}
	return fresh;
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

int dt_record_writer_events(struct dt_record_writer *w, const void *recs, size_t n)
{
	unsigned char head[DT_BLOCK_HEADER_SIZE + 8];
	size_t body = n * w->rec_size;
	uLong crc;
	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)recs, body } };
	int cnt = 2;

	if (w->error)
		return -w->error;
	/* the payload: the record count and size, then the records as the ring held them */
	put32(head + DT_BLOCK_HEADER_SIZE, (uint32_t)n);
	put32(head + DT_BLOCK_HEADER_SIZE + 4, (uint32_t)w->rec_size);
	crc = crc32(0, head + DT_BLOCK_HEADER_SIZE, 8);
	crc = crc32(crc, recs, (uInt)body);
	put32(head, DT_BLOCK_SYNC);
	put32(head + 4, DT_BLOCK_EVENTS | ((uint32_t)(~DT_BLOCK_EVENTS & 0xffff) << 16));
	put32(head + 8, (uint32_t)(8 + body));
	put32(head + 12, (uint32_t)crc);
	/*
	 * One writev: a regular file's write holds its inode lock, so a block JavaScript writes at the
	 * same moment (counts, statistics) lands before or after this one, never inside it.
	 */
	while (cnt) {
		ssize_t k = writev(w->fd, iov + (2 - cnt), cnt);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->error = errno;
			return -w->error;
		}
		__atomic_fetch_add(&w->bytes, (uint64_t)k, __ATOMIC_RELAXED);
		while (cnt && (size_t)k >= iov[2 - cnt].iov_len) {
			k -= (ssize_t)iov[2 - cnt].iov_len;
			cnt--;
		}
		if (cnt) {
			iov[2 - cnt].iov_base = (char *)iov[2 - cnt].iov_base + k;
			iov[2 - cnt].iov_len -= (size_t)k;
		}
	}
	__atomic_fetch_add(&w->records, n, __ATOMIC_RELAXED);
	return 0;
}
