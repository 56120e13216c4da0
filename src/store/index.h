/* index.h — the LMDB index of a durable store: id → location entries, the quarantine of corrupt
 * records, store metadata (format, indexed tail, totals), and the tables of mutable names (refs,
 * kv namespaces; store/names.h). Encoding of entries lives here too. LMDB serializes the write
 * transactions (the store's committer, name updates); readers never block. */
#ifndef HL_STORE_INDEX_H
#define HL_STORE_INDEX_H
#include <lmdb.h>
#include "store/entry.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_totals {
	uint64_t objects, raw_bytes, stored_bytes, compressed;
	uint64_t deltas, delta_raw_bytes, delta_stored_bytes; /* objects stored as deltas */
} hl_totals;

typedef struct hl_index {
	MDB_env *env;
	MDB_dbi obj, quar, meta;
	MDB_dbi refs, kv, kvlru, kvns; /* mutable names: see store/names.h */
	MDB_dbi large;                 /* chunked blobs: id → manifest (store/names.h) */
	MDB_dbi scache;                /* snapshot stat cache: a directory (dev, inode) → its row */
	int has_names;                 /* those tables exist (a read-only open may find none) */
	int read_only;
	pthread_mutex_t pool_mu;  /* free list of reset read transactions */
	MDB_txn **pool;
	size_t npool, cap;
	_Atomic long open_txns;   /* begun and not yet ended (reads and writes): 0 at close */
	int share_fd;             /* a reader's shared flock on lock.mdb (-1: none): see
	                             hl_idx_close_compact */
} hl_index;

/* Maps an LMDB return code to helios's (MDB_NOTFOUND → HL_NOTFOUND, corruption → HL_CORRUPT…). */
int hl_idx_err(int rc);

/* Opens or creates <dir>/index. nosync: commits do not sync (the store syncs explicitly). */
int hl_idx_open(hl_index *ix, const char *store_dir, int read_only, int nosync, uint64_t map_size);
/* The same for the index directory at path (a kept damaged index, say). */
int hl_idx_open_at(hl_index *ix, const char *path, int read_only, int nosync, uint64_t map_size);
void hl_idx_close(hl_index *ix);
/* Closes a writer's index (flushed and synced by the caller), first compacting the file when at
 * least a third of it, and 256 KiB, is free pages (a collection that moved many records rewrote
 * most entries, and LMDB's file never shrinks): a compact copy is written beside it, synced, and
 * renamed over it once the environment is closed. Only when no other process has the index open:
 * read-only openers hold a shared flock on lock.mdb from open to close, and the writer takes it
 * exclusively without waiting (a reader opening meanwhile waits for the rename). A failure
 * leaves the old file, which is whole. */
void hl_idx_close_compact(hl_index *ix);

/* Write transactions, the only way to begin one: every begin is paired with exactly one
 * write_end, which commits (err == 0) or aborts (err != 0) and returns the outcome. A commit that
 * fails has ended the transaction too. Every transaction still open is counted, and closing the
 * index with one open is a bug that stops the process (it would hold LMDB's writer lock for ever:
 * the next writer, often the same thread, waits on it). */
int hl_idx_write_begin(hl_index *ix, MDB_txn **txn);
int hl_idx_write_end(hl_index *ix, MDB_txn *txn, int err);

/* A read transaction from the pool (renewed, so it sees the latest commit), and its return. */
int hl_idx_read_begin(hl_index *ix, MDB_txn **txn);
void hl_idx_read_end(hl_index *ix, MDB_txn *txn);
/* Looks id up in a database through a short read transaction. */
int hl_idx_lookup(hl_index *ix, MDB_dbi dbi, const hl_id *id, hl_idx_entry *out);

/* Asks the kernel to read the whole index file in, in the background, when it is at most
 * max_bytes: lookups in the order of the segments' records then find their pages resident instead
 * of reading each from the disk at random. */
void hl_idx_prefetch(hl_index *ix, uint64_t max_bytes);

int hl_idx_get(MDB_txn *txn, MDB_dbi dbi, const hl_id *id, hl_idx_entry *out);
int hl_idx_put(MDB_txn *txn, MDB_dbi dbi, const hl_id *id, const hl_idx_entry *e);

/* Metadata: the end of the last indexed record, and running totals. */
int hl_idx_get_tail(MDB_txn *txn, hl_index *ix, uint32_t *segno, uint64_t *off);
int hl_idx_set_tail(MDB_txn *txn, hl_index *ix, uint32_t segno, uint64_t off);
int hl_idx_get_totals(MDB_txn *txn, hl_index *ix, hl_totals *t);
int hl_idx_set_totals(MDB_txn *txn, hl_index *ix, const hl_totals *t);
/* Forces the index file to stable storage. */
int hl_idx_sync(hl_index *ix);

#endif
