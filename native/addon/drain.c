// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Copies committed records out of the ring (ring.c's mapping of it): the producer position
 * read once, every whole record copied, the consumer position stored once.
 */
#include <string.h>
#include <linux/bpf.h>
#include "tracer.h"

int dt_drain_open(struct dt_ring *r, int map_fd)
{
	(void)r;
	(void)map_fd;
	return 0;
}

void dt_drain_close(struct dt_ring *r)
{
	(void)r;
}

size_t dt_ring_drain(struct dt_ring *r, unsigned char *buf, size_t cap, size_t rec_size)
{
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
}
