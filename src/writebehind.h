/* writebehind: large writes into stored files, finished after the writer
 * was answered.
 *
 * A large write's data is copied into one of four 1 MiB slots of memory
 * shared with a helper process, and the writer is answered at once; the
 * helper writes the slot into the store file. So the daemon's part of the
 * writer's next write (the kernel's copy out of the writer, ours into a
 * slot) and the store's copy of this one overlap, on two CPUs, where each
 * write used to wait for both.
 *
 * Why a process, not a thread: what was answered must reach the store even
 * if the daemon is killed. The helper (a fork of the daemon, named
 * "agentbayfs-wb", started with the first stream) shares the slots, gets
 * the store file's descriptor with each write it is asked, and holds the
 * descriptor given to wb_hold() (the FUSE connection: the mount dies only
 * once the helper is done); it finishes everything it was asked and exits
 * when the daemon's end of its socket closes. If the helper dies instead,
 * the daemon writes the slots it had not answered for itself, and writes
 * synchronously from then on. Only killing both at once loses what was
 * answered and not yet written (at most the four slots).
 *
 * Owns: the helper, the slots, the queue. No thread: whoever waits for a
 * write (for a free slot, to settle) reads the helper's answers. Knows
 * nothing of FUSE: a slot is filled through a callback.
 *
 * Order: queued writes are done one at a time in the order they were
 * queued, across all streams, by the helper.
 *
 * Errors: a queued write that fails keeps its errno in its stream; the
 * stream's next write, wb_stream_take_error() (for flush and fsync) or
 * wb_stream_free() gives it, once, as the page cache's writeback would at
 * the next fsync or close.
 *
 * Whoever reads, stats, truncates or runs a file must first wait for its
 * pending writes: wb_settle().
 */
#ifndef AGENTBAYFS_WRITEBEHIND_H
#define AGENTBAYFS_WRITEBEHIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wb;
struct wb_stream;

/* What is settled together: one stored file, whichever handles write it.
 * Zeroed before use; guarded by the wb's lock. */
struct wb_group {
	uint64_t last;           /* sequence number of its newest queued write */
};

/* A writer with no helper yet. 0, or -errno. */
int wb_new(struct wb **out);
/* The helper, once started, keeps FD open until it has done every write
 * asked of it, even when the daemon dies first. Before the first stream. */
void wb_hold(struct wb *wb, int fd);
/* The helper's pid; 0 before it starts. */
pid_t wb_helper(struct wb *wb);
/* Ends the helper (it finishes what it was asked), frees WB. Its streams
 * must have been freed. */
void wb_free(struct wb *wb);

/* A stream writing into FD (the caller's, kept open until the stream is
 * freed) for GROUP; starts the helper with the first. 0, or -errno (then
 * the caller writes synchronously): -EPIPE once the helper is gone. */
int wb_stream_new(struct wb *wb, int fd, struct wb_group *group, struct wb_stream **out);
/* Waits for the stream's pending writes and frees it. Returns the error of
 * a failed one not yet given (0 or -errno). */
int wb_stream_free(struct wb_stream *s);

/* Bytes one queued write may hold: a slot's. */
size_t wb_stream_max(const struct wb_stream *s);

/* Copies up to LEN bytes of the write into DST; returns the bytes copied
 * (0 when none could be) or -errno. */
typedef ssize_t (*wb_fill_fn)(void *arg, void *dst, size_t len);

/* Queues LEN bytes (at most wb_stream_max()) to be written at OFF: waits
 * for a free slot, has FILL copy the data into it, and asks the helper to
 * write what it copied; when the helper cannot take it (gone, or its
 * socket full), writes it here instead. Returns the bytes queued or
 * written, possibly fewer than LEN (the caller writes the rest itself after
 * wb_settle()), or -errno: the error of an earlier queued write not yet
 * given (nothing is queued then), FILL's, or that of the write done here. */
ssize_t wb_stream_write(struct wb_stream *s, off_t off, size_t len, wb_fill_fn fill, void *arg);

/* The error of a failed queued write of S not yet given (0 or -errno),
 * after waiting for S's pending writes. */
int wb_stream_take_error(struct wb_stream *s);

/* Waits until every write queued for GROUP so far is done; for every group
 * when GROUP is NULL. Writes queued meanwhile are not waited for. */
void wb_settle(struct wb *wb, const struct wb_group *group);

#endif
