/*
 * spool.c — the log usage records wait in (spool.h): a file that survives
 * kill -9 and restarts, or a bounded buffer in memory, behind one interface.
 *
 * Both modes hold the same bytes: one record per line, each reader's cursor a
 * byte offset into them.  Only where the bytes live differs, so peeking,
 * advancing and the bounds are one piece of code.
 *
 * The file is opened O_APPEND and written with one writev() per record, so
 * a record is in the page cache (which outlives the process) when
 * spool_append() returns.  Beside it, PATH.cursors:
 *
 *     # llmproxy spool cursors: reader NAME OFFSET
 *     reader billing 81920
 *     reader audit 4096
 *
 * is written whole to PATH.cursors.tmp and rename()d over, so whatever a crash
 * leaves is one complete version, never half of one.  A cursor that was saved
 * behind the truth makes records repeat (same request_id; the receiver
 * de-duplicates); nothing here ever lets one move ahead of what a reader was
 * given, so no record is skipped.
 *
 * Space comes back two ways.  When every reader has everything, the file is
 * truncated to nothing (the cursor file saying 0 is written before anyone
 * can append again).  When the slowest reader is past half of a large file,
 * the live tail is copied to PATH.rewrite and renamed over the file; that is
 * two renames that must look atomic across a crash, so the cursor file is the
 * journal (a write-ahead "cut N" line):
 *
 *   1. copy the tail to PATH.rewrite, fsync it
 *   2. cursors with "cut N" and the old offsets, fsync      <- the commit
 *   3. rename PATH.rewrite over PATH, fsync the directory
 *   4. cursors with the new offsets, no "cut"
 *
 * Open finishes what a crash interrupted: no "cut" line means step 2 never
 * happened (a PATH.rewrite is a stale copy: deleted); a "cut N" line means
 * it did (PATH.rewrite, if still there, is renamed over PATH; N is
 * subtracted from every offset).
 *
 * The long copy in step 1 runs without the lock (the bytes it copies never
 * change: the file is append-only and only this code shortens it); the few
 * bytes appended meanwhile are copied under the lock in the commit.
 *
 * Durability: with `sync`, an append returns after an fdatasync() of the
 * file, and a cursor save after an fsync() of the new cursor file and of the
 * directory; without it, both are in the page cache, which a crash or kill -9
 * of the process does not lose (spool_sync() later makes them durable).  A
 * rewrite always syncs: it must never put records that were on disk at risk.
 * The file is flock()ed: a second process on the same spool is refused.
 *
 * Locks: `mu` guards the log and the cursors; `save_mu` orders cursor-file
 * writes (taken before `mu`) so they land in the order their snapshots were
 * taken, while appenders, who take only `mu`, keep going during the write.
 * fdatasync() runs outside `mu` too (group commit: one sync covers every
 * append before it), so an fsync-ing request never stalls the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "spool.h"

#define COPY_BUF        (64 * 1024)     /* heap: rewrite copies, line counts */
#define SCAN_BUF        4096            /* stack: finding one line's end */
#define CURSOR_HEADER   "# llmproxy spool cursors: reader NAME OFFSET\n"

struct reader {
	char *name;
	uint64_t off;           /* where its next record starts */
	uint64_t seq;           /* records before off */
};

struct spool {
	pthread_mutex_t mu;
	pthread_cond_t more;            /* appended, or spool_wake_all() */
	pthread_cond_t synced;          /* an fdatasync() outside mu ended */
	pthread_mutex_t save_mu;        /* cursor file writes; before mu */
	int memory;                     /* no file */

	/* The log: size bytes holding nrec lines. */
	uint64_t size;
	uint64_t nrec;
	uint64_t max_bytes;
	size_t max_records;
	int woken;
	size_t nreaders;
	struct reader *readers;

	/* Memory mode. */
	char *mem;
	size_t mem_cap;

	/* File mode. */
	int fd;                         /* changes only in rewrite() */
	int dirfd;
	char *path, *cur_path, *cur_tmp, *rw_path;
	int syncing;                    /* an fdatasync(fd) is running */
	uint64_t written;               /* bytes ever appended (never shrinks) */
	uint64_t synced_upto;           /* `written` covered by an fdatasync */
	uint64_t rewrite_retry_at;      /* after a failed rewrite: size to reach
	                                   before the next try */
	int cursors_unsynced;           /* under save_mu */
	uint64_t *snap;                 /* under save_mu: offsets to save */

	/* For spool_pending() / spool_bytes(), which must never wait. */
	_Atomic uint64_t pub_pending;
	_Atomic uint64_t pub_bytes;
};

/* ---- small helpers ------------------------------------------------------------ */

static ssize_t
pread_all(int fd, char *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int
write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies bytes [from, to) of src to the end of dst. */
static int
copy_range(int src, uint64_t from, uint64_t to, int dst, char *buf)
{
	while (from < to) {
		size_t n = to - from < COPY_BUF ? (size_t)(to - from) : COPY_BUF;
		ssize_t got = pread_all(src, buf, n, from);
		if (got < 0)
			return -1;
		if ((size_t)got != n) {
			errno = EIO;    /* the file shrank under us: not ours */
			return -1;
		}
		if (write_all(dst, buf, n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

static uint64_t
count_nl(const char *p, size_t n)
{
	uint64_t c = 0;
	const char *end = p + n;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		c++;
		p++;
	}
	return c;
}

/* Reads up to n bytes of the log at off (called with mu held). */
static ssize_t
log_read(struct spool *s, uint64_t off, char *buf, size_t n)
{
	if (off >= s->size)
		return 0;
	if (n > s->size - off)
		n = (size_t)(s->size - off);
	if (s->memory) {
		memcpy(buf, s->mem + off, n);
		return (ssize_t)n;
	}
	return pread_all(s->fd, buf, n, off);
}

/* The offset just past the first '\n' at or after off.  Returns 0, or -1
 * when the log ends first (or cannot be read). */
static int
line_end(struct spool *s, uint64_t off, uint64_t *end)
{
	char buf[SCAN_BUF];

	while (off < s->size) {
		ssize_t got = log_read(s, off, buf, sizeof(buf));
		if (got <= 0)
			return -1;
		const char *nl = memchr(buf, '\n', (size_t)got);
		if (nl != NULL) {
			*end = off + (uint64_t)(nl - buf) + 1;
			return 0;
		}
		off += (uint64_t)got;
	}
	return -1;
}

static struct reader *
slowest(struct spool *s)
{
	struct reader *m = &s->readers[0];

	for (size_t i = 1; i < s->nreaders; i++)
		if (s->readers[i].off < m->off)
			m = &s->readers[i];
	return m;
}

/* Called with mu held after every change. */
static void
publish(struct spool *s)
{
	s->pub_pending = s->nrec - slowest(s)->seq;
	s->pub_bytes = s->memory ? 0 : s->size;
}

/* Drops what every reader is past (memory: bytes [0, slowest)). */
static void
mem_compact(struct spool *s)
{
	struct reader *slow = slowest(s);
	uint64_t m = slow->off, mseq = slow->seq;

	if (m == 0)
		return;
	memmove(s->mem, s->mem + m, (size_t)(s->size - m));
	for (size_t i = 0; i < s->nreaders; i++) {
		s->readers[i].off -= m;
		s->readers[i].seq -= mseq;
	}
	s->size -= m;
	s->nrec -= mseq;
}

/* ---- the cursor file ---------------------------------------------------------- */

/*
 * Writes the cursor file from offs[] (one per reader), with a "cut N" line
 * when cut > 0 (see the journal at the top).  With sync, the file and the
 * rename are on disk on return.  Called with save_mu held.  Returns 0 or -1.
 */
static int
save_cursors(struct spool *s, const uint64_t *offs, uint64_t cut, int sync)
{
	size_t cap = sizeof(CURSOR_HEADER) + 32;
	char *text = NULL;
	int fd = -1;

	for (size_t i = 0; i < s->nreaders; i++)
		cap += strlen(s->readers[i].name) + 32;
	text = malloc(cap);
	if (text == NULL)
		goto fail;
	size_t n = (size_t)snprintf(text, cap, "%s", CURSOR_HEADER);
	if (cut > 0)
		n += (size_t)snprintf(text + n, cap - n, "cut %llu\n",
		    (unsigned long long)cut);
	for (size_t i = 0; i < s->nreaders; i++)
		n += (size_t)snprintf(text + n, cap - n, "reader %s %llu\n",
		    s->readers[i].name, (unsigned long long)offs[i]);

	fd = open(s->cur_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, text, n) < 0)
		goto fail;
	if (sync && fsync(fd) < 0)
		goto fail;
	int rc = close(fd);
	fd = -1;
	if (rc < 0 || rename(s->cur_tmp, s->cur_path) < 0)
		goto fail;
	if (sync) {
		if (fsync(s->dirfd) < 0)
			goto fail;
	} else {
		s->cursors_unsynced = 1;
	}
	free(text);
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	free(text);
	errno = e;
	return -1;
}

/* Digits only, no sign, no overflow. */
static int
parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p == end)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Applies one line of the cursor file.  Returns 0, or -1 if malformed. */
static int
cursor_line(struct spool *s, const char *p, const char *end, uint64_t *cut)
{
	if (p == end || *p == '#')
		return 0;
	if ((size_t)(end - p) > 4 && memcmp(p, "cut ", 4) == 0)
		return parse_u64(p + 4, end, cut);
	if ((size_t)(end - p) < 7 || memcmp(p, "reader ", 7) != 0)
		return -1;
	p += 7;
	/* The name may hold spaces; the offset is after the last one. */
	const char *sp = end;
	while (sp > p && sp[-1] != ' ')
		sp--;
	if (sp <= p + 1)
		return -1;
	uint64_t off;
	if (parse_u64(sp, end, &off) < 0)
		return -1;
	size_t nlen = (size_t)(sp - 1 - p);
	for (size_t i = 0; i < s->nreaders; i++) {
		struct reader *rd = &s->readers[i];
		if (strlen(rd->name) == nlen && memcmp(rd->name, p, nlen) == 0)
			rd->off = off;
	}
	return 0;       /* a reader no longer configured: forgotten */
}

/*
 * Loads PATH.cursors into the readers' offsets and the pending cut (0 for
 * none).  A missing file means no cursors.  A malformed one is treated the
 * same: every reader starts at the beginning, which repeats records rather
 * than skipping any.  Returns 0, or -1 when the file cannot be read.
 */
static int
load_cursors(struct spool *s, uint64_t *cut)
{
	char *text = NULL;
	ssize_t n = 0;
	int fd = open(s->cur_path, O_RDONLY | O_CLOEXEC);

	*cut = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	text = malloc(CAP_SPOOL_CURSOR_FILE + 1);
	if (text == NULL)
		goto fail;
	n = pread_all(fd, text, CAP_SPOOL_CURSOR_FILE + 1, 0);
	if (n < 0)
		goto fail;
	close(fd);
	fd = -1;

	int bad = n > CAP_SPOOL_CURSOR_FILE;
	const char *p = text, *end = text + (bad ? 0 : n);
	while (!bad && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			bad = 1;        /* torn: rename() makes this impossible */
			break;
		}
		bad = cursor_line(s, p, nl, cut) < 0;
		p = nl + 1;
	}
	if (bad) {
		*cut = 0;
		for (size_t i = 0; i < s->nreaders; i++)
			s->readers[i].off = 0;
	}
	free(text);
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	free(text);
	errno = e;
	return -1;
}

/* ---- opening a file ----------------------------------------------------------- */

static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 1);

	if (p != NULL) {
		memcpy(p, a, la);
		memcpy(p + la, b, lb + 1);
	}
	return p;
}

/* Opens (creating) the data file and takes its lock: two processes
 * appending to one spool would interleave their cursors' meaning. */
static int
open_data(struct spool *s, char *err, size_t errlen)
{
	int fd = open(s->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", s->path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "%s: %s", s->path, errno == EWOULDBLOCK ?
		    "in use by another process" : strerror(errno));
		close(fd);
		return -1;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	return 0;
}

/* A crash in the middle of an append leaves a last line without '\n': it
 * was never acknowledged to anyone, so it goes. */
static int
cut_torn_tail(struct spool *s)
{
	char buf[SCAN_BUF];
	uint64_t end = s->size, keep = 0;

	while (end > 0 && keep == 0) {
		size_t n = end < SCAN_BUF ? (size_t)end : SCAN_BUF;
		if (pread_all(s->fd, buf, n, end - n) != (ssize_t)n)
			return -1;
		for (size_t i = n; i > 0; i--) {
			if (buf[i - 1] == '\n') {
				keep = end - n + i;
				break;
			}
		}
		end -= n;
	}
	if (keep == s->size)
		return 0;
	if (ftruncate(s->fd, (off_t)keep) < 0)
		return -1;
	s->size = keep;
	return 0;
}

/*
 * A cursor beyond the end (the file was truncated, or deleted, after the
 * cursor was saved) or not at the start of a line (the file is not the one
 * the cursor was saved for) cannot be trusted: that reader starts over.
 * Returns how many cursors moved, or -1.
 */
static int
check_cursors(struct spool *s)
{
	int moved = 0;

	for (size_t i = 0; i < s->nreaders; i++) {
		struct reader *rd = &s->readers[i];
		char c = '\n';
		if (rd->off == 0)
			continue;
		if (rd->off <= s->size &&
		    pread_all(s->fd, &c, 1, rd->off - 1) != 1)
			return -1;
		if (rd->off > s->size || c != '\n') {
			rd->off = 0;
			moved++;
		}
	}
	return moved;
}

/* Counts the lines in the file and before each cursor. */
static int
count_lines(struct spool *s)
{
	char *buf = malloc(COPY_BUF);
	uint64_t base = 0, nl = 0;

	if (buf == NULL)
		return -1;
	for (size_t i = 0; i < s->nreaders; i++)
		s->readers[i].seq = 0;
	while (base < s->size) {
		size_t n = s->size - base < COPY_BUF ? (size_t)(s->size - base) :
		    COPY_BUF;
		if (pread_all(s->fd, buf, n, base) != (ssize_t)n) {
			free(buf);
			errno = EIO;
			return -1;
		}
		for (size_t i = 0; i < s->nreaders; i++) {
			struct reader *rd = &s->readers[i];
			if (rd->off > base && rd->off <= base + n)
				rd->seq = nl + count_nl(buf,
				    (size_t)(rd->off - base));
		}
		nl += count_nl(buf, n);
		base += n;
	}
	s->nrec = nl;
	free(buf);
	return 0;
}

static int
open_file(struct spool *s, const char *path, char *err, size_t errlen)
{
	uint64_t cut = 0;
	struct stat st;
	const char *what = path;

	s->path = concat(path, "");
	s->cur_path = concat(path, ".cursors");
	s->cur_tmp = concat(path, ".cursors.tmp");
	s->rw_path = concat(path, ".rewrite");
	char *dir = concat(path, "");
	if (!s->path || !s->cur_path || !s->cur_tmp || !s->rw_path || !dir) {
		free(dir);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		snprintf(err, errlen, "%s: directory %s: %s", path, dir,
		    strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);

	/* The lock comes first: the journal below is ours to finish only if no
	 * other process is in the middle of it. */
	if (open_data(s, err, errlen) < 0)
		return -1;
	what = s->cur_path;
	if (load_cursors(s, &cut) < 0)
		goto fail;
	if (cut > 0) {
		/* Step 2 of a rewrite was done: finish it. */
		what = s->rw_path;
		if (rename(s->rw_path, s->path) == 0) {
			what = path;
			if (fsync(s->dirfd) < 0)
				goto fail;
			if (open_data(s, err, errlen) < 0)
				return -1;
		} else if (errno != ENOENT) {
			goto fail;
		}
		for (size_t i = 0; i < s->nreaders; i++) {
			struct reader *rd = &s->readers[i];
			rd->off = rd->off >= cut ? rd->off - cut : 0;
		}
	} else {
		(void)unlink(s->rw_path);       /* step 1 never committed */
	}
	(void)unlink(s->cur_tmp);

	what = s->path;
	if (fstat(s->fd, &st) < 0)
		goto fail;
	s->size = (uint64_t)st.st_size;
	if (cut_torn_tail(s) < 0)
		goto fail;
	int moved = check_cursors(s);
	if (moved < 0 || count_lines(s) < 0)
		goto fail;
	s->written = s->size;   /* what the last process wrote may be unsynced */
	s->synced_upto = 0;
	/* The file may be new: its name must survive a power loss as well as
	 * the records in it. */
	what = path;
	if (fsync(s->dirfd) < 0)
		goto fail;
	if (cut > 0 || moved > 0) {
		for (size_t i = 0; i < s->nreaders; i++)
			s->snap[i] = s->readers[i].off;
		what = s->cur_path;
		if (save_cursors(s, s->snap, 0, 1) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", what, strerror(errno));
	return -1;
}

/* ---- life cycle --------------------------------------------------------------- */

static void
spool_free(struct spool *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	for (size_t i = 0; i < s->nreaders; i++)
		free(s->readers[i].name);
	free(s->readers);
	free(s->snap);
	free(s->mem);
	free(s->path);
	free(s->cur_path);
	free(s->cur_tmp);
	free(s->rw_path);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->save_mu);
	pthread_cond_destroy(&s->more);
	pthread_cond_destroy(&s->synced);
	free(s);
}

static int
init_sync(struct spool *s)
{
	pthread_condattr_t ca;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* spool_wait's deadline is on the io_now_ms() clock: monotonic, so a
	 * wall-clock step cannot stretch or cut a wait. */
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&s->more, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&s->synced, &ca);
	pthread_condattr_destroy(&ca);
	if (rc == 0)
		rc = pthread_mutex_init(&s->mu, NULL);
	if (rc == 0)
		rc = pthread_mutex_init(&s->save_mu, NULL);
	return rc == 0 ? 0 : -1;
}

struct spool *
spool_open(const char *path, uint64_t max_bytes, size_t max_records,
    size_t nreaders, const char *const *reader_names, char *err, size_t errlen)
{
	struct spool *s;

	if (nreaders == 0) {
		snprintf(err, errlen, "spool: no readers");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || init_sync(s) < 0) {
		free(s);
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	s->fd = -1;
	s->dirfd = -1;
	s->memory = path == NULL;
	s->max_bytes = max_bytes;
	s->max_records = max_records;
	s->readers = calloc(nreaders, sizeof(*s->readers));
	s->snap = calloc(nreaders, sizeof(*s->snap));
	if (s->readers == NULL || s->snap == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		goto fail;
	}
	s->nreaders = nreaders;
	for (size_t i = 0; i < nreaders; i++) {
		const char *name = reader_names[i];
		if (name[0] == '\0' || strchr(name, '\n') != NULL) {
			snprintf(err, errlen, "spool: reader name \"%s\" is "
			    "empty or has a line break", name);
			goto fail;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(s->readers[k].name, name) == 0) {
				snprintf(err, errlen, "spool: two readers "
				    "are named \"%s\"; each needs its own "
				    "cursor", name);
				goto fail;
			}
		}
		s->readers[i].name = concat(name, "");
		if (s->readers[i].name == NULL) {
			snprintf(err, errlen, "spool: out of memory");
			goto fail;
		}
	}
	if (!s->memory && open_file(s, path, err, errlen) < 0)
		goto fail;
	publish(s);
	return s;
fail:
	spool_free(s);
	return NULL;
}

/* ---- syncing ------------------------------------------------------------------- */

/*
 * Returns once an fdatasync() that began after `upto` bytes were written has
 * succeeded.  The sync itself runs outside mu, and a caller whose bytes an
 * fsync already running will not cover waits for it and starts the next one
 * for everybody (group commit).  Returns 0 or -1 (errno).
 */
static int
sync_upto(struct spool *s, uint64_t upto)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	while (s->synced_upto < upto) {
		if (s->syncing) {
			pthread_cond_wait(&s->synced, &s->mu);
			continue;
		}
		s->syncing = 1;
		int fd = s->fd;
		uint64_t target = s->written;
		pthread_mutex_unlock(&s->mu);
		int r = fdatasync(fd);
		int e = errno;
		pthread_mutex_lock(&s->mu);
		s->syncing = 0;
		if (r == 0 && target > s->synced_upto)
			s->synced_upto = target;
		pthread_cond_broadcast(&s->synced);
		if (r < 0) {
			errno = e;
			rc = -1;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
spool_sync(struct spool *s)
{
	int rc = 0;

	if (s->memory)
		return 0;
	pthread_mutex_lock(&s->mu);
	uint64_t upto = s->written;
	pthread_mutex_unlock(&s->mu);
	if (sync_upto(s, upto) < 0)
		rc = -1;

	pthread_mutex_lock(&s->save_mu);
	if (s->cursors_unsynced) {
		int fd = open(s->cur_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0 || fsync(s->dirfd) < 0)
			rc = -1;
		else
			s->cursors_unsynced = 0;
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&s->save_mu);
	return rc;
}

void
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	if (!s->memory) {
		pthread_mutex_lock(&s->save_mu);
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < s->nreaders; i++)
			s->snap[i] = s->readers[i].off;
		uint64_t upto = s->written;
		pthread_mutex_unlock(&s->mu);
		(void)save_cursors(s, s->snap, 0, 1);
		pthread_mutex_unlock(&s->save_mu);
		(void)sync_upto(s, upto);
	}
	spool_free(s);
}

/* ---- appending ------------------------------------------------------------------ */

/* One record and its '\n' at the end of the file.  A write cut short (disk
 * full) is taken back, so the next record does not glue onto half of this
 * one. */
static int
file_append(struct spool *s, const char *rec, size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)(uintptr_t)rec, .iov_len = len },
		{ .iov_base = (void *)(uintptr_t)"\n", .iov_len = 1 },
	};
	struct iovec *v = iov;
	int cnt = 2;
	size_t done = 0;

	while (cnt > 0) {
		ssize_t w = writev(s->fd, v, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			if (done > 0)
				(void)ftruncate(s->fd, (off_t)s->size);
			errno = e;
			return -1;
		}
		done += (size_t)w;
		size_t left = (size_t)w;
		while (cnt > 0 && left >= v->iov_len) {
			left -= v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + left;
			v->iov_len -= left;
		}
	}
	return 0;
}

static int
mem_append(struct spool *s, const char *rec, size_t len)
{
	if (s->size + len + 1 > s->mem_cap)
		mem_compact(s);
	size_t need = (size_t)s->size + len + 1;
	if (need > s->mem_cap) {
		size_t cap = s->mem_cap > 0 ? s->mem_cap : 4096;
		while (cap < need)
			cap *= 2;
		if (s->max_bytes > 0 && cap > s->max_bytes)
			cap = need > s->max_bytes ? need : (size_t)s->max_bytes;
		char *p = realloc(s->mem, cap);
		if (p == NULL)
			return -1;
		s->mem = p;
		s->mem_cap = cap;
	}
	memcpy(s->mem + s->size, rec, len);
	s->mem[s->size + len] = '\n';
	return 0;
}

int
spool_append(struct spool *s, const char *rec, size_t len, int sync)
{
	/* A record is one line that a CAP_RECORD_BYTES buffer holds with its
	 * '\n': spool_peek promises that. */
	if (len == 0 || memchr(rec, '\n', len) != NULL) {
		errno = EINVAL;
		return SPOOL_IO;
	}
	if (len >= CAP_RECORD_BYTES) {
		errno = EMSGSIZE;
		return SPOOL_IO;
	}
	pthread_mutex_lock(&s->mu);
	struct reader *slow = slowest(s);
	/* The file's bound is its size on disk; memory's is what is live. */
	uint64_t used = s->memory ? s->size - slow->off : s->size;
	if ((s->max_records > 0 && s->nrec - slow->seq >= s->max_records) ||
	    (s->max_bytes > 0 && used + len + 1 > s->max_bytes)) {
		pthread_mutex_unlock(&s->mu);
		return SPOOL_FULL;
	}
	int rc = s->memory ? mem_append(s, rec, len) : file_append(s, rec, len);
	if (rc < 0) {
		pthread_mutex_unlock(&s->mu);
		return SPOOL_IO;
	}
	s->size += len + 1;
	s->nrec++;
	s->written += len + 1;
	uint64_t upto = s->written;
	publish(s);
	pthread_cond_broadcast(&s->more);
	pthread_mutex_unlock(&s->mu);

	if (sync && !s->memory && sync_upto(s, upto) < 0)
		return SPOOL_IO;
	return SPOOL_OK;
}

/* ---- reading -------------------------------------------------------------------- */

int
spool_wait(struct spool *s, size_t r, int64_t deadline_ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ms / 1000),
		.tv_nsec = (long)(deadline_ms % 1000) * 1000000,
	};

	if (r >= s->nreaders)
		return 0;
	pthread_mutex_lock(&s->mu);
	while (!s->woken && s->readers[r].off >= s->size) {
		if (deadline_ms < 0)
			pthread_cond_wait(&s->more, &s->mu);
		else if (pthread_cond_timedwait(&s->more, &s->mu, &ts) ==
		    ETIMEDOUT)
			break;
	}
	int pending = s->readers[r].off < s->size;
	pthread_mutex_unlock(&s->mu);
	return pending;
}

void
spool_wake_all(struct spool *s)
{
	pthread_mutex_lock(&s->mu);
	s->woken = 1;
	pthread_cond_broadcast(&s->more);
	pthread_mutex_unlock(&s->mu);
}

/* A line that is no record: empty, or too long for any buffer spool_peek
 * promises to fill (a file written by a build with a larger cap, or
 * damaged).  Delivering it is impossible, waiting on it forever worse. */
static int
is_junk(size_t line_len)
{
	return line_len == 0 || line_len >= CAP_RECORD_BYTES;
}

size_t
spool_peek(struct spool *s, size_t r, size_t max, char *buf, size_t cap,
    size_t *len)
{
	size_t n = 0, used = 0;
	int moved = 0;

	*len = 0;
	if (r >= s->nreaders || max == 0 || cap == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	struct reader *rd = &s->readers[r];
	ssize_t got;
	for (;;) {
		got = log_read(s, rd->off, buf, cap);
		if (got <= 0)
			goto out;
		const char *nl = memchr(buf, '\n', (size_t)got);
		if (nl != NULL && !is_junk((size_t)(nl - buf)))
			break;
		if (nl == NULL && cap < CAP_RECORD_BYTES)
			goto out;       /* the caller's buffer is too small */
		uint64_t end;
		if (nl != NULL)
			end = rd->off + (uint64_t)(nl - buf) + 1;
		else if (line_end(s, rd->off + (uint64_t)got, &end) < 0)
			goto out;
		rd->off = end;
		rd->seq++;
		moved = 1;
	}
	/* Consecutive records from the cursor; a junk line ends the batch so
	 * that advancing by n passes exactly these n lines. */
	while (n < max && used < (size_t)got) {
		const char *nl = memchr(buf + used, '\n', (size_t)got - used);
		if (nl == NULL || is_junk((size_t)(nl - (buf + used))))
			break;
		used = (size_t)(nl - buf) + 1;
		n++;
	}
out:
	if (moved)
		publish(s);
	pthread_mutex_unlock(&s->mu);
	*len = used;
	return n;
}

/* ---- advancing and reclaiming ----------------------------------------------------- */

/*
 * Copies the live tail into a new file and renames it over the old one,
 * following the journal at the top of this file.  Called with save_mu held
 * and mu not held.  Returns 0 or -1; on failure nothing changed.
 */
static int
rewrite(struct spool *s)
{
	char *buf = malloc(COPY_BUF);
	int tfd = -1, locked = 0;

	if (buf == NULL)
		return -1;
	pthread_mutex_lock(&s->mu);
	uint64_t m = slowest(s)->off, mseq = slowest(s)->seq, to = s->size;
	pthread_mutex_unlock(&s->mu);

	tfd = open(s->rw_path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	/* s->fd is stable here: only this function replaces it, under
	 * save_mu, which we hold. */
	if (tfd < 0 || copy_range(s->fd, m, to, tfd, buf) < 0 ||
	    fdatasync(tfd) < 0)
		goto fail;

	pthread_mutex_lock(&s->mu);
	locked = 1;
	while (s->syncing)      /* it holds the old fd */
		pthread_cond_wait(&s->synced, &s->mu);
	if (s->size > to && (copy_range(s->fd, to, s->size, tfd, buf) < 0 ||
	    fdatasync(tfd) < 0))
		goto fail;
	if (flock(tfd, LOCK_EX | LOCK_NB) < 0)
		goto fail;
	for (size_t i = 0; i < s->nreaders; i++)
		s->snap[i] = s->readers[i].off;
	if (save_cursors(s, s->snap, m, 1) < 0)         /* the commit */
		goto fail;
	if (rename(s->rw_path, s->path) < 0) {
		int e = errno;
		(void)save_cursors(s, s->snap, 0, 1);   /* take it back */
		errno = e;
		goto fail;
	}
	(void)fsync(s->dirfd);
	close(s->fd);
	s->fd = tfd;
	tfd = -1;
	for (size_t i = 0; i < s->nreaders; i++) {
		s->readers[i].off -= m;
		s->readers[i].seq -= mseq;
		s->snap[i] = s->readers[i].off;
	}
	s->size -= m;
	s->nrec -= mseq;
	s->synced_upto = s->written;    /* the new file was synced whole */
	publish(s);
	/* If this is lost, the "cut" line still says how to read the file. */
	(void)save_cursors(s, s->snap, 0, 0);
	pthread_mutex_unlock(&s->mu);
	free(buf);
	return 0;
fail:;
	int e = errno;
	if (locked)
		pthread_mutex_unlock(&s->mu);
	if (tfd >= 0) {
		close(tfd);
		(void)unlink(s->rw_path);
	}
	free(buf);
	errno = e;
	return -1;
}

int
spool_advance(struct spool *s, size_t r, size_t n, int sync)
{
	int rc = 0, saved = 0, want_rewrite = 0;

	if (r >= s->nreaders) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&s->save_mu);
	pthread_mutex_lock(&s->mu);
	struct reader *rd = &s->readers[r];
	for (size_t i = 0; i < n; i++) {
		uint64_t end;
		if (line_end(s, rd->off, &end) < 0)
			break;
		rd->off = end;
		rd->seq++;
	}

	struct reader *slow = slowest(s);
	if (slow->off == s->size && s->size > 0) {
		/* Everybody has everything: start over at 0.  The cursors
		 * saying so are written before anyone can append again, so a
		 * crash in between leaves cursors beyond the end (reset at
		 * open), never pointing into new records. */
		if (s->memory || ftruncate(s->fd, 0) == 0) {
			for (size_t i = 0; i < s->nreaders; i++) {
				s->readers[i].off = 0;
				s->readers[i].seq = 0;
			}
			s->size = 0;
			s->nrec = 0;
			if (!s->memory) {
				memset(s->snap, 0,
				    s->nreaders * sizeof(*s->snap));
				rc = save_cursors(s, s->snap, 0, sync);
				saved = 1;
			}
		}
	} else if (s->memory) {
		/* Amortised: each byte moves at most once per halving. */
		if (slow->off > 0 && slow->off >= s->size / 2)
			mem_compact(s);
	} else if (slow->off >= s->size / 2 &&
	    s->size > CAP_SPOOL_REWRITE_BYTES &&
	    s->size >= s->rewrite_retry_at) {
		want_rewrite = 1;
	}
	for (size_t i = 0; i < s->nreaders; i++)
		s->snap[i] = s->readers[i].off;
	publish(s);
	uint64_t size = s->size;
	pthread_mutex_unlock(&s->mu);

	if (!s->memory && !saved)
		rc = save_cursors(s, s->snap, 0, sync);
	if (want_rewrite && rc == 0 && rewrite(s) < 0)
		s->rewrite_retry_at = size + CAP_SPOOL_REWRITE_BYTES;
	pthread_mutex_unlock(&s->save_mu);
	return rc;
}

/* ---- numbers ------------------------------------------------------------------------ */

uint64_t
spool_pending(struct spool *s)
{
	return s->pub_pending;
}

uint64_t
spool_bytes(struct spool *s)
{
	return s->pub_bytes;
}
