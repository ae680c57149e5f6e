/* trigger: when does a save happen? The per-file save detection state machine.
 *
 * Owns: the content generation of one stored file and the count of its open
 * writable handles, and the rules that turn FUSE requests into "mark the
 * results pending" and "run it now" (research notes, fuse-anchors §3.3):
 *   - content changes (CREATE, OPEN with O_TRUNC, WRITE, truncate, rename onto
 *     the name) bump the generation;
 *   - FLUSH of a writable handle while the content changed since the last run
 *     marks the results pending (FLUSH is synchronous: close(2) waits for it);
 *   - RELEASE of the last writable handle runs the file if its content changed;
 *   - a rename onto a script name is a save by itself.
 * Whether the name is a script is the caller's business (names.h).
 * Pure logic: no I/O, no locks (the caller serialises), no FUSE.
 */
#ifndef AGENTBAYFS_TRIGGER_H
#define AGENTBAYFS_TRIGGER_H

#include <stdbool.h>
#include <stdint.h>

struct trigger {
	uint64_t gen;       /* bumped on every content change */
	uint64_t sched_gen; /* generation handed to the last run */
	unsigned writers;   /* open writable handles */
};

/* A writable handle was opened (OPEN or CREATE). CHANGES: the open itself
 * changed the content (CREATE, O_TRUNC). */
void trigger_open_write(struct trigger *t, bool changes);

/* The content changed through a handle or a truncate (WRITE, SETATTR size). */
void trigger_changed(struct trigger *t);

/* FLUSH of a writable handle: true when results must be marked pending. */
bool trigger_flush(const struct trigger *t);

/* RELEASE of a writable handle: true when this was the last writer and the
 * content changed since the last run; the run is then considered scheduled. */
bool trigger_release_write(struct trigger *t);

/* The file was renamed onto a (script) name: true when it must run now;
 * false when writers are still open (their last RELEASE will run it). */
bool trigger_renamed_onto(struct trigger *t);

/* True while a save is under way: content changed since the last run. */
bool trigger_dirty(const struct trigger *t);

#endif
