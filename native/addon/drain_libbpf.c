// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The comparison build's drain (CMake option DT_RING_LIBBPF, scripts/bench-ring): records
 * copied out through libbpf's ring_buffer__consume instead of drain.c, so the two can be
 * measured side by side; everything else of the reader is ring.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tracer.h"

struct dt_copy {
	struct ring_buffer *rb;
	unsigned char *buf;
	size_t cap, n, rec_size;
};

static int dt_copy_record(void *ctx, void *data, size_t size)
{
	struct dt_copy *c = ctx;

	if (size >= c->rec_size)
		memcpy(c->buf + c->n++ * c->rec_size, data, c->rec_size);
	return c->n == c->cap ? -E2BIG : 0; /* full: libbpf stops after this record */
}

int dt_drain_open(struct dt_ring *r, int map_fd)
{
	struct dt_copy *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->rb = ring_buffer__new(map_fd, dt_copy_record, c, NULL);
	if (!c->rb) {
		int e = -errno;
		free(c);
		return e;
	}
	r->variant = c;
	return 0;
}

void dt_drain_close(struct dt_ring *r)
{
	struct dt_copy *c = r->variant;

	if (c) {
		ring_buffer__free(c->rb);
		free(c);
	}
	r->variant = NULL;
}

size_t dt_ring_drain(struct dt_ring *r, unsigned char *buf, size_t cap, size_t rec_size)
{
	struct dt_copy *c = r->variant;

	c->buf = buf;
	c->cap = cap;
	c->n = 0;
	c->rec_size = rec_size;
	ring_buffer__consume(c->rb);
	return c->n;
}
