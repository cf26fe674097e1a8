/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The recording's events blocks written by the reader thread (docs/FORMATS.md; record.ts writes
 * every other block). A batch goes to the file here only when every location, interface, stack,
 * socket cgroup and --path step's function and namespace in it was in an earlier batch, which
 * JavaScript saw and described: a file cut short still names everything it holds. A batch with
 * anything new goes to JavaScript instead.
 */
#ifndef DROPTRACE_RECORD_WRITER_H
#define DROPTRACE_RECORD_WRITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* the block framing record.ts writes and reads; layout.test.ts holds the two to each other */
#define DT_BLOCK_SYNC 0x4b4c4244u /* "DBLK" little-endian */
#define DT_BLOCK_HEADER_SIZE 16
#define DT_BLOCK_EVENTS 2

/* a set of 64-bit keys: open addressing, where 0 marks a free slot */
struct dt_keyset {
	uint64_t *slots;
	size_t mask; /* slots - 1, a power of two */
	size_t used;
	int zero;    /* the key 0 is in the set */
};

/*
 * what the recorder describes once: a location (also a --path step's function or route), an
 * interface (namespace and ifindex), a stack, a socket's cgroup, a namespace a --path step crossed
 */
enum { DT_KEY_LOCATION, DT_KEY_IFACE, DT_KEY_STACK, DT_KEY_CGROUP, DT_KEY_NETNS, DT_KEY_KINDS };

struct dt_record_writer {
	int fd; /* our own dup of the recording's descriptor: one file offset, one lock with JavaScript's writes */
	size_t rec_size;
	struct dt_keyset keys[DT_KEY_KINDS];
	uint64_t last_location, last_iface; /* a flood repeats them record after record */
	int primed;                         /* the two hold a record's (none is looked at before the first) */
	uint64_t records, bytes;            /* written here */
	int error;                          /* errno of the write that failed; nothing is written after it */
};

/* 0, or -errno (a bad descriptor, no memory) */
int dt_record_writer_open(struct dt_record_writer *w, int fd, size_t rec_size);
void dt_record_writer_close(struct dt_record_writer *w);

/*
 * Whether a batch holds a location, interface, stack or socket cgroup not seen in an earlier
 * batch; all of the batch's are seen from then on. -ENOMEM when the set cannot grow (the batch
 * then counts as new: JavaScript describes and writes it).
 */
int dt_record_writer_new(struct dt_record_writer *w, const void *recs, size_t n);

/* One events block of n records: 0, or -errno (also kept in w->error). */
int dt_record_writer_events(struct dt_record_writer *w, const void *recs, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* DROPTRACE_RECORD_WRITER_H */
