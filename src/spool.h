/*
 * spool.h — the log that usage records wait in until every reporter has
 * them: a file (durable across crashes and restarts) or a bounded buffer in
 * memory.
 *
 * One record per line.  Each reader (a reporter) has a cursor; a record is
 * gone once every cursor is past it.  With a file, the cursors are kept in
 * "PATH.cursors" (rewritten atomically), so after kill -9 or a restart every
 * reader resumes where its last acknowledged delivery left it: a record is
 * delivered at least once, and a repeat carries the same request_id.
 *
 * Thread-safe: request threads append, sender threads read and advance.
 */
#ifndef LLMPROXY_SPOOL_H
#define LLMPROXY_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;

/*
 * Opens the log.  path NULL: in memory, at most max_records records (and
 * max_bytes bytes).  path set: the file is created or reopened; what it holds
 * beyond each reader's saved cursor is pending again (a reader not in the
 * cursor file starts at the beginning; a torn last line is cut off).  Returns
 * the log, or NULL with a message in err.
 */
struct spool *spool_open(const char *path, uint64_t max_bytes,
    size_t max_records, size_t nreaders, const char *const *reader_names,
    char *err, size_t errlen);

/* Closes (files are synced first) and frees. */
void spool_close(struct spool *s);

enum {
	SPOOL_OK = 0,
	SPOOL_FULL = -1,        /* max_bytes / max_records reached: dropped */
	SPOOL_IO = -2,          /* the file could not be written (errno) */
};

/*
 * Appends one record (no '\n' in it) and wakes the readers.  With a file,
 * the record is in the file (page cache) on return, and on disk too when
 * `sync`.  Returns SPOOL_OK, SPOOL_FULL or SPOOL_IO.
 */
int spool_append(struct spool *s, const char *rec, size_t len, int sync);

/*
 * Waits until reader r has a pending record, or deadline_ms (io_now_ms()
 * clock; -1 none) passes, or spool_wake_all() is called.  Returns whether
 * records are pending.
 */
int spool_wait(struct spool *s, size_t r, int64_t deadline_ms);

/* Makes every spool_wait() return (at shutdown). */
void spool_wake_all(struct spool *s);

/*
 * Copies up to max records pending for reader r into buf, each followed by
 * '\n'.  Returns how many; *len gets the bytes used.  A record that does not
 * fit is not copied (a buffer of CAP_RECORD_BYTES always holds one).
 */
size_t spool_peek(struct spool *s, size_t r, size_t max, char *buf, size_t cap,
    size_t *len);

/*
 * Moves reader r's cursor past n records (they were delivered), saves the
 * cursors (with `sync`, on disk), and reclaims space once every reader is
 * past a record.  Returns 0 or -1 (errno) if the cursors could not be saved.
 */
int spool_advance(struct spool *s, size_t r, size_t n, int sync);

/* fsync()s the file and the cursors (a no-op in memory). */
int spool_sync(struct spool *s);

/* Records not yet past every cursor; bytes the file holds (0 in memory). */
uint64_t spool_pending(struct spool *s);
uint64_t spool_bytes(struct spool *s);

#endif
