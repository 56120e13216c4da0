/* store_int.h — the private header of the durable local store (src/store/store_*.c): the
 * struct behind hl_local, the records and queue entries of the write path, and the functions the
 * store's files share. Nothing outside src/store includes it; store.h is the store's interface.
 *
 * Locks, always taken in this order: gc_mu (one collection) → flush_mu (index flushes,
 * quarantines) → commit_mu (the leader writing a group; segment writer state, totals) →
 * touch_mu (queued access-time refreshes, held ids; taken alone by finders, never inside an LMDB
 * write transaction except by the collector's deletion, which holds all three) → gen_lock.
 * Readers take only gen_lock, shared, for two table lookups: it keeps a table they may be reading
 * from being emptied for reuse. The swap of the active table (under commit_mu) does not take it —
 * the two pointers are atomic and stored in an order readers tolerate — so a reader that is
 * descheduled inside its lookup never holds up a commit. gen_lock prefers writers: a stream of
 * readers cannot starve the flusher's release of a flushed table. The shard locks of the index's
 * copy in memory (loctab.h) are leaves: taken last, nothing taken inside them. */
#ifndef HL_STORE_INT_H
#define HL_STORE_INT_H
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <zstd.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/grow.h"
#include "base/idmap.h"
#include "base/io.h"
#include "base/log.h"
#include "hash/hash.h"
#include "store/index.h"
#include "store/loctab.h"
#include "store/memtab.h"
#include "store/nametab.h"
#include "store/record.h"
#include "store/segment.h"
#include "store/sketch.h"
#include "store/store.h"
#include "base/alloc.h"
#include "base/stopper.h"

#define MARKER "HELIOS"
#define MARKER_TEXT "helios-store 1\n"
#define STORE_FORMAT 1
#define GROUP_MAX_BYTES (64u << 20) /* a commit group stops growing here */
#define COMPRESS_MIN 128
#define COMPRESS_MAX (64u << 20)
#define SKETCH_RING_LOG 16 /* recent objects a put naming bases may find by similarity */
#define MEMTAB_BITS 16     /* 64 Ki slots: up to 32 Ki entries between index flushes... */
#define MEMTAB_BITS_MAX 18 /* ...and up to 128 Ki in a large store (hl_st_memtab_bits) */
#define BATCH_MAX ((size_t)1 << 15) /* records in one group at most: a smallest table's room */
#define TOUCH_AGE_S 60 /* refresh an access time only when older than this (or a quarter of the
                          GC grace period, when that is shorter) */
#define INDEX_FLUSH_MS 1000 /* the memtable goes to LMDB at least this often (or when half full) */

/* One record being written: header, payload (raw or compressed), outcome. */
typedef struct prep {
	hl_put_item *item;
	uint8_t hdr[HL_REC_HDR_LEN];
	const void *payload;
	size_t payload_len;
	void *zbuf;
	uint16_t flags;
	uint32_t segno;  /* where it was written */
	uint64_t off;
	int write;       /* the group commit writes it (not present, not a duplicate) */
	const hl_idx_entry *moving; /* compaction: the entry this record replaces (written even
	                               though the object is present; its access time is kept) */
	int fresh;       /* absent when prepared (a put naming bases): a base for later records */
	uint8_t depth;   /* a delta: its chain's depth, its base, and the earlier record of the */
	hl_id delta_base; /* batch that writes the base (NULL: the base was stored) */
	struct prep *base_rec;
	hl_idx_entry base_at; /* a stored base: its entry when the delta was encoded against it */
	int level;       /* zstd level (0: the store's) */
	uint32_t marks;  /* the entry's marks (entry.h) */
	int rebased;     /* a repack gave it a new base (its depth may grow): see keep_base */
} prep;

/* A growable list of ids. */
typedef struct idvec {
	hl_id *v;
	size_t n, cap;
} idvec;

/* Room in x for want elements in all: 0 or ENOMEM (x unchanged). */
static inline int idvec_room(idvec *x, size_t want)
{
	if (want <= x->cap)
		return 0; /* (x->v may be NULL: nothing allocated yet) */
	hl_id *v = hl_grow_to(x->v, want, &x->cap, sizeof(*v), 1024);
	if (!v)
		return ENOMEM;
	x->v = v;
	return 0;
}

static inline int idvec_push(idvec *x, const hl_id *id)
{
	if (idvec_room(x, x->n + 1))
		return ENOMEM;
	x->v[x->n++] = *id;
	return 0;
}

/* One caller's batch in the commit queue. */
typedef struct creq {
	prep *recs;
	size_t n;
	uint64_t bytes;
	int status;
	int done;
	pthread_cond_t cv;  /* signalled when done, or when it becomes the head of the queue */
	struct creq *next;
} creq;

struct hl_local {
	char *dir;
	hl_options opt;
	int lock_fd;
	hl_index ix;
	hl_segset segs;

	pthread_mutex_t q_mu;        /* commit queue */
	creq *q_head, *q_tail;

	pthread_mutex_t commit_mu;   /* the leader writing a group; see the lock order above */
	int write_err;               /* sticky after a failed sync: writes refused until reopen */
	uint32_t dirty_lo;           /* lowest segment written since the last sync (0: clean) */
	hl_totals tot;               /* everything stored, flushed or not */
	hl_idmap *named;             /* while a repack runs (commit_mu): bases of the deltas
	                                committed since it began (it gives no new base to those: their
	                                dependents' depths would be wrong); named_lost: one could not
	                                be kept */
	int named_lost;

	pthread_rwlock_t gen_lock;
	_Atomic(hl_memtab *) active;   /* entries committed to segments, not yet to LMDB */
	_Atomic(hl_memtab *) flushing; /* the table being written to LMDB (or whose write failed) */
	hl_memtab *spare;            /* an emptied table, ready for the next swap (flush_mu) */

	pthread_mutex_t gc_mu;       /* one collection or compaction at a time */
	pthread_mutex_t flush_mu;
	int flush_err;               /* the last flush's failure, logged once (flush_mu) */
	hl_totals ptot;              /* totals as committed to LMDB */
	hl_totals pend_tot;          /* totals and tail that go with `flushing` */
	uint32_t pend_seg;
	uint64_t pend_off;

	pthread_mutex_t touch_mu;    /* innermost lock: touches, held ids, gc_active */
	idvec touches;               /* ids whose access time to refresh at the next index flush */
	idvec touches_spare;         /* swapped with touches by the flush (flush_mu) */
	atomic_int gc_active;        /* a collection is running: found ids it may take are held */
	atomic_int compact_stop;     /* the store is closing: a compaction stops after its batch */
	_Atomic uint64_t gc_cutoff;  /* its candidates' access times are at most this */
	idvec held;                  /* ids found present since the collection began */
	hl_idmap pins;               /* id → how many pin it: no collection deletes it (a large
	                                blob's parts while its map is made); 0: a tombstone */
	size_t pins_live;            /* ids with a pin */
	size_t pins_units;           /* pins not yet unpinned (counts summed): while a collection
	                                runs, `held` keeps room for that many more, so an unpin never
	                                fails to hold what it unpins */
	hl_sketch_index sketches;    /* recent objects written by puts naming bases (delta bases) */
	uint64_t touch_age;          /* refresh access times older than this many seconds */

	hl_loctab *loc;              /* the object table in memory (NULL: off, or a read-only handle);
	                                changed with LMDB's, after each commit, under the same locks */
	pthread_t loc_builder;       /* "helios-loctab": fills it from LMDB after open */
	int loc_building;
	hl_stopper loc_stop;

	pthread_t flusher;           /* "helios-index": flushes tables, and syncs for sync=batch */
	int flusher_running, stop, wake;
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv;

	atomic_uint_fast64_t puts, puts_new, gets, get_misses, corrupt_reads, syncs, commits, flushes;
	atomic_uint_fast64_t sync_ns;
};

/* A delta whose base cannot be produced (missing, quarantined or corrupt): it reads as HL_CORRUPT,
 * but its own record is sound and is not quarantined (store_read.c; never leaves the store). */
#define DELTA_BASE_BAD (-30990)
#define HL_DELTA_WINDOW_LOG_MAX 27 /* a base and its delta's object fit in 128 MiB */

/* fills the caller's buffer from a record found in the index (store_read.c) */
typedef int (*fill_fn)(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx);

/* reading: records, entries, quarantine (store_read.c) */
int hl_st_fill_raw(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx);
int hl_st_find_entry(hl_local *s, MDB_txn *txn, const hl_id *id, hl_idx_entry *e);
/* The committed entry of id (LMDB's, through the table in memory when it is ready): 0,
 * HL_NOTFOUND, or an error. *txn: a read transaction begun here when LMDB must be read (the
 * caller ends it), or one the caller began. */
int hl_st_find_committed(hl_local *s, MDB_txn **txn, const hl_id *id, hl_idx_entry *e);
/* Starts filling s->loc from LMDB in a thread; hl_st_loctab_stop ends it (both: open/close). */
int hl_st_loctab_start(hl_local *s);
void hl_st_loctab_stop(hl_local *s);
/* verify --deep: each entry of LMDB's object table is in s->loc, the same, and s->loc holds no
 * more (each difference logged and counted in *problems). 0 or an error. */
int hl_st_loctab_check(hl_local *s, uint64_t *problems);
/* The record at e (the live copy of id) read and verified into dst, a delta resolved: 0,
 * HL_CORRUPT (this record is bad), DELTA_BASE_BAD (*bad_base: the base that is), or an error. */
int hl_st_check_entry(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst,
                      hl_id *bad_base);
/* id read and verified like hl_local_get, not counted as a get (the store's own reads). */
int hl_st_read_object(hl_local *s, const hl_id *id, hl_buf **out);
/* A delta record's base and depth (its own bytes checked): 0, HL_NOTFOUND when e is no delta,
 * HL_CORRUPT, or an error. */
int hl_st_delta_base(hl_local *s, const hl_id *id, const hl_idx_entry *e, hl_id *base,
                     unsigned *depth);
/* This thread's zstd decompression context (kept per thread; NULL on out-of-memory). */
ZSTD_DCtx *hl_st_thread_dctx(void);
int hl_st_find_in_memory(hl_local *s, const hl_id *id, hl_idx_entry *e);
int hl_st_find_in_memory_locked(hl_local *s, const hl_id *id, hl_idx_entry *e);
char *hl_st_path_join(const char *a, const char *b);
void hl_st_quarantine(hl_local *s, const hl_id *id, const hl_idx_entry *e);
int hl_st_read_following(hl_local *s, const hl_id *id, hl_idx_entry *e, fill_fn fill, void *ctx);
int hl_st_read_record_at(hl_local *s, int fd, uint32_t seg, uint64_t off, uint64_t size,
                         uint64_t now, hl_rec_hdr *h, hl_idx_entry *e, uint8_t **buf, size_t *cap);
int hl_st_same_place(const hl_idx_entry *a, const hl_idx_entry *b);
void hl_st_stat_of(const hl_idx_entry *e, hl_stat *st);
int hl_st_sys_err(int e);
ZSTD_CCtx *hl_st_thread_cctx(void);
void hl_st_totals_add(hl_totals *t, const hl_idx_entry *e, int sign);

/* writing: preparing records, group commit, syncs, access times (store_commit.c) */
void hl_st_apply_touches(hl_local *s, MDB_txn *txn, uint64_t now);
int hl_st_commit(hl_local *s, creq *req);
int hl_st_hold(hl_local *s, const hl_id *id, uint64_t atime, int *held);
void hl_st_maybe_compress(hl_local *s, prep *p);
/* Compresses p as hl_st_maybe_compress does, or, when it saves at least a quarter more, as a
 * delta against base (present: held like any find, so a collection keeps it) or against base's
 * own base (the shallower chain when it is no larger); then against other (and its base) when
 * that saves a quarter of what p is by then. Either may be NULL. */
void hl_st_compress_against(hl_local *s, prep *p, const hl_id *base, const hl_id *other);
void hl_st_prep_free(prep *p, size_t n);
int hl_st_prepare(hl_local *s, hl_put_item *items, size_t n, int ids_trusted, prep **out,
                  uint64_t *bytes);
int hl_st_rely_on(hl_local *s, const hl_id *id, const hl_idx_entry *e);
void hl_st_return_touches(hl_local *s);
void hl_st_set_write_err(hl_local *s, int err);
int hl_st_sync_locked(hl_local *s);
int hl_st_sync_unlocked(hl_local *s);
void hl_st_take_touches(hl_local *s);
uint64_t hl_st_unindexed(hl_local *s);

/* re-encoding moved records, repacking (store_repack.c) */
typedef struct repack repack;
/* A repack pass at zstd level on threads (0: half the CPUs): from now on the commits note which
 * objects deltas name. */
int hl_st_repack_begin(hl_local *s, int level, unsigned threads, repack **out);
/* Notes the base of every delta of the listing v (taken after hl_st_repack_begin). */
int hl_st_repack_scan(hl_local *s, repack *rp, const hl_obj_entry *v, size_t n);
/* Whether the record at e is one the pass re-encodes (not yet repacked at its level; rp NULL:
 * no pass). */
int hl_st_repack_wants(const repack *rp, const hl_idx_entry *e);
/* Encodes the n records p (read, prepared) that replace the entries was: each at its level
 * against its base again, those the pass wants at its level and maybe against a similar object
 * (rp NULL: a compaction without a pass). */
void hl_st_encode_moves(hl_local *s, repack *rp, prep *p, const hl_idx_entry *was, size_t n);
/* Counts a record the pass re-encoded and wrote (p replaced was). */
void hl_st_repack_count(repack *rp, const hl_idx_entry *was, const prep *p);
/* Ends the pass (NULL: nothing), its totals into rep. */
void hl_st_repack_end(hl_local *s, repack *rp, hl_compact_report *rep);

/* the index flusher (store_flush.c) */
int hl_st_flush_index(hl_local *s);
unsigned hl_st_memtab_bits(uint64_t objects);
extern unsigned hl_st_objects_per_memtab_entry; /* 64; tests lower it to reach larger tables */
void *hl_st_flusher_main(void *arg);
void hl_st_wake_flusher(hl_local *s);

/* opening and tail replay (store_open.c) */
int hl_st_read_marker(const char *path);
int hl_st_take_lock(hl_local *s);

/* walks, verify, statistics (store_walk.c) */
int hl_st_snapshot_entries(hl_local *s, MDB_dbi dbi, hl_obj_entry **out, size_t *count,
                           uint64_t *bytes, int *damaged);

#endif
