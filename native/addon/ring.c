// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Our own reader of the BPF ring buffer (the kernel's layout, as libbpf maps it): a read-write
 * consumer page, then the producer page and the data area mapped twice so a record that wraps
 * is contiguous. The reader needs the two positions anyway, to know how much is queued before
 * it decides to sleep or drain (libbpf 1.1.2 has no such query; ring__avail_data_size is 1.3+),
 * and with them a drain is drain.c's twenty lines: read the producer position once, copy,
 * store the consumer position once, where libbpf's ring_buffer__consume stores it after every
 * record and keeps chasing the producer. scripts/bench-ring measures the two side by side
 * (docs/PERFORMANCE.md): ours is a few ns per program run cheaper, within this VM's noise; it
 * stays because it costs no more code than calling libbpf would.
 */
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "tracer.h"

int dt_ring_open(struct dt_ring *r, int map_fd)
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
	return dt_drain_open(r, map_fd);
}

void dt_ring_close(struct dt_ring *r)
{
	if (!r->data_size)
		return; /* never opened */
	dt_drain_close(r);
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

/* bytes committed or reserved in the ring and not yet consumed */
static unsigned long dt_ring_avail(const struct dt_ring *r)
{
	return __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE) - __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
}

/* the longest an idle reader sleeps without a drop or an interrupt */
#define DT_IDLE_WAIT_MS 1000

/* how long the reader sleeps between drains while a flood lasts */
#define DT_FLOOD_SLEEP_NS (4 * 1000 * 1000)

/*
 * Long because it is the reader's whole wakeup protocol in one place (no threshold, a batch
 * waiting, a flood, armed and idle, gathering), each step commented where it happens: split,
 * the order in which the flag is set and the ring looked at again would be spread over files.
 */
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

