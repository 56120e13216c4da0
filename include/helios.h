/* helios.h — the public C API of helios, a content-addressable store keyed by BLAKE3-256.
 *
 * This is the only header the CLI, the server and library users include. Handles are opaque;
 * functions return 0 on success, a negative HL_* code for helios outcomes, or a positive errno
 * value for a system failure; hl_strerror() names every one of them. Results come back through
 * out-parameters. Not-found (HL_NOTFOUND) is an ordinary outcome; HL_CORRUPT always means that
 * stored bytes failed verification and is never used for an I/O error.
 *
 * Thread safety: an hl_store may be used from any number of threads at once. Concurrent gets of
 * one uncached id share one read, concurrent puts of one id one write. Any object call may return
 * HL_BUSY when the admission bounds (hl_options.max_inflight) are reached: nothing was done; retry
 * after a pause. */
#ifndef HELIOS_H
#define HELIOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shared library exports exactly what is declared here (it is built with hidden visibility). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define HL_VERSION_STRING "0.1.0"

/* ---- errors ---- */
enum {
	HL_OK = 0,
	HL_NOTFOUND = -30900, /* no such object (an outcome, not an alarm) */
	HL_CORRUPT,           /* stored bytes failed verification; never returned as data */
	HL_MISMATCH,          /* supplied bytes do not hash to the supplied id; nothing stored */
	HL_CONFLICT,          /* compare-and-swap lost */
	HL_BUSY,              /* overloaded: retry later */
	HL_INVALID,           /* malformed argument (bad id, bad option, …) */
	HL_TOOBIG,            /* object or buffer exceeds a limit */
	HL_NOSPACE,           /* out of disk space */
	HL_LOCKED,            /* the store is opened read-write by another process */
	HL_READONLY,          /* write attempted on a read-only handle */
	HL_NOSTORE,           /* no store at that path (read-only open of a missing store) */
	HL_VERSION,           /* on-disk format newer than this build understands */
	HL_INCOMPLETE,        /* an object names children that are not present */
	HL_CLOSED,            /* the store is shutting down */
	HL_UNAVAILABLE,       /* the durable tier (a bucket, a remote helios) cannot be reached */
	HL_NOTSTORE,          /* the directory holds other files: it is not made into a store */
	HL_STOPPED,           /* writes stopped: a sync failed, so what the kernel kept is unknown until
	                         the store is reopened (reads go on) */
	HL_AMBIGUOUS,         /* an id prefix that names more than one commit */
	HL_FORGOTTEN,         /* a commit whose snapshot retention forgot (its tree is not kept) */
	HL_UNTRUSTED,         /* an https server's certificate does not chain to a trusted CA */
	HL_ERR_LAST_
};

/* Names any return value: 0, HL_* codes and errno values. Never NULL. */
const char *hl_strerror(int err);

/* ---- object ids ---- */
#define HL_ID_LEN 32
#define HL_ID_HEX_LEN 64
typedef struct hl_id {
	uint8_t b[HL_ID_LEN];
} hl_id;

/* Parses exactly 64 lowercase hex characters (len must be 64). HL_INVALID otherwise. */
int hl_id_parse(const char *hex, size_t len, hl_id *out);
/* Writes 64 lowercase hex characters and a NUL into out. */
void hl_id_format(const hl_id *id, char out[HL_ID_HEX_LEN + 1]);
int hl_id_equal(const hl_id *a, const hl_id *b);

/* BLAKE3-256 of data: the id helios gives those bytes (what b3sum prints). */
void hl_hash(const void *data, size_t len, hl_id *out);

typedef struct hl_hasher hl_hasher; /* streaming BLAKE3 */
hl_hasher *hl_hasher_new(void);     /* NULL on out-of-memory */
void hl_hasher_update(hl_hasher *h, const void *data, size_t len);
void hl_hasher_final(const hl_hasher *h, hl_id *out); /* may be called more than once */
void hl_hasher_free(hl_hasher *h);
/* SHA-256 (for protocols that name content by it, such as Bazel's cache). */
void hl_sha256(const void *data, size_t len, uint8_t out[32]);

/* ---- reference-counted immutable buffers ---- */
typedef struct hl_buf hl_buf;
const uint8_t *hl_buf_data(const hl_buf *b);
size_t hl_buf_len(const hl_buf *b);
hl_buf *hl_buf_ref(hl_buf *b);  /* returns b with one more reference */
void hl_buf_unref(hl_buf *b);   /* frees on the last reference; NULL is ignored */

/* ---- opening a store ---- */
typedef enum hl_sync_mode {
	HL_SYNC_ALWAYS = 0, /* acknowledged ⇒ on stable storage (concurrent writers share one sync) */
	HL_SYNC_BATCH = 1,  /* acknowledged ⇒ written; synced at most every sync_interval_ms */
	HL_SYNC_NONE = 2,   /* never synced except at close (tests, caches) */
} hl_sync_mode;

typedef struct hl_options {
	int read_only;              /* open without writing; many read-only openers may coexist */
	int create;                 /* create the store if missing (ignored when read_only) */
	hl_sync_mode sync;          /* default HL_SYNC_ALWAYS */
	unsigned sync_interval_ms;  /* HL_SYNC_BATCH period, default 50 */
	uint64_t segment_size;      /* roll to a new segment file past this, default 256 MiB */
	int compress_level;         /* zstd level for records that shrink; 0 = never compress; default 3 */
	uint64_t max_object_size;   /* largest object accepted, default 4 GiB */
	uint64_t map_size;          /* LMDB map address space, default 1 TiB (falls back if refused) */
	int index_in_memory;        /* keep a copy of the object index in memory (about 100 bytes an
	                               object), so lookups cost about the same at 10 M objects as at
	                               10 k; default 1; read-only handles never do */
	uint64_t l1_bytes;          /* in-memory cache of verified objects, default 256 MiB; 0 = off */
	uint64_t l1_max_object;     /* larger objects bypass the cache, default 1 MiB */
	int l1_policy;              /* HL_L1_POLICY_SIEVE (default) or HL_L1_POLICY_LRU */
	/* admission control: past these bounds a call returns HL_BUSY at once instead of queueing */
	unsigned max_inflight;      /* operations in flight below the L1, per class (gets, has, writes);
	                               default 1024; 0 = unbounded */
	unsigned shard_inflight;    /* the same per id shard (1024 shards), default 64 */
	int adaptive_limit;         /* lower the bound while latency climbs, raise it back; default 1 */
	unsigned health_interval_ms; /* health evaluated (and alerts logged) this often, default 1000;
	                                0 = only when asked for */
	uint64_t kv_max_bytes;      /* bytes one kv namespace may hold before its least recently
	                               used entries are evicted, default 8 GiB */
	/* large objects: hl_put stores objects above chunk_threshold (default 1 MiB; 0 = never) as
	 * content-defined chunks (FastCDC, min/avg/max default 16/64/256 KiB) plus a manifest, so
	 * an edit in the middle of a large file stores only the chunks around it. The object's id is
	 * still the BLAKE3 of its whole content. */
	uint64_t chunk_threshold;
	uint32_t chunk_min, chunk_avg, chunk_max;
	/* garbage collection: an unreachable object is collected only once it has been neither
	 * written nor found present for this long (default 86400 s = 24 h): an upload not yet linked
	 * by a tree or ref is never collected under its writer */
	uint64_t gc_grace_s;
	/* a shared bucket's collection protocol (docs/DESIGN.md, "Collecting a shared bucket"): a
	 * node relies on nothing while its view of the bucket's collection state is older than this
	 * (default 10000 ms); a collector waits for the nodes by multiples of it */
	unsigned fleet_lease_ms;
	/* what a node relied on within the grace period is remembered (the collector keeps it): in a
	 * ring of this many entries (default 1 Mi), which grows, logged, rather than forget one
	 * still inside the period */
	size_t fleet_remember;
	/* tiers (docs/DESIGN.md, "Tiers"): where objects are kept durably. NULL, "" or "local": this
	 * store's own segment files (the default). "s3": the bucket the s3_* fields describe, shared by
	 * every node that points at it; refs live there too, changed by conditional writes, so nodes
	 * never lose each other's updates. "helios": the server at remote_url, objects and refs.
	 * With a remote backend the store directory keeps what is the node's own: the snapshot stat
	 * cache and the L2 cache file; kv namespaces and the large-blob map are the backend's. */
	const char *backend;
	const char *s3_endpoint;    /* "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com" */
	const char *s3_bucket;
	const char *s3_prefix;      /* keys under "<prefix>/", default none */
	const char *s3_region;      /* default "us-east-1" */
	const char *s3_access_key, *s3_secret_key;
	const char *remote_url;     /* backend "helios": another `helios serve`, "http://host:8080" */
	const char *remote_token;   /* its bearer token (write scope), or NULL */
	/* repair source of a local backend: NULL (none but the L1), "s3" (the bucket of the s3_*
	 * fields: a replica or backup) or "http://host:port" (another helios; token remote_token) */
	const char *repair_from;
	unsigned remote_timeout_ms; /* one request to the backend, default 30000 */
	unsigned remote_retries;    /* extra attempts after a transient failure, default 3 */
	const char *tls_cacert;     /* PEM file of the CA certificates an https server this store talks
	                               to must chain to (a helios backend, repair-from, push, pull, an
	                               https bucket); NULL: the system's. Certificates are always
	                               verified, names included */
	/* the L2 cache on local disk (SSD) in front of a remote backend: l2_bytes (default 1 GiB;
	 * 0 = none) in regions of l2_region_size (default 4 MiB), file <store>/l2.cache */
	uint64_t l2_bytes;
	uint32_t l2_region_size;
} hl_options;

enum { HL_L1_POLICY_SIEVE = 0, HL_L1_POLICY_LRU = 1 };
/* l2_region_size: a multiple of HL_L2_REGION_ALIGN from HL_L2_REGION_MIN to HL_L2_REGION_MAX */
#define HL_L2_REGION_MIN (64u << 10)
#define HL_L2_REGION_MAX (1u << 30)
#define HL_L2_REGION_ALIGN 4096u

/* Fills the defaults above. Call before changing fields. */
void hl_options_init(hl_options *opt);

typedef struct hl_store hl_store;

/* Opens the store in directory dir. opt may be NULL for defaults (read-write, create).
 * HL_LOCKED if another process holds it read-write; HL_NOSTORE if it is missing and
 * create is off or read_only is on. Opening never scans whole segment files. */
int hl_open(const char *dir, const hl_options *opt, hl_store **out);
/* Syncs outstanding writes and frees the handle. Every hl_buf stays valid. */
void hl_close(hl_store *s);

/* ---- writing ---- */
/* Stores len bytes, sets *id. *created (may be NULL) is 1 when the object is new, 0 when it
 * already existed (then nothing is written; its access time is refreshed). */
int hl_put(hl_store *s, const void *data, size_t len, hl_id *id, int *created);
/* Like hl_put but the id is given and verified: HL_MISMATCH (nothing stored) if data does not
 * hash to it. */
int hl_put_expect(hl_store *s, const hl_id *id, const void *data, size_t len, int *created);

/* Storing an object that arrives in pieces, without holding it whole: past the chunk threshold it
 * is cut into chunks as it arrives (the same chunks hl_put would make). expect: the id it must hash
 * to (NULL: computed). close stores it (or finds it stored) and frees the writer; HL_MISMATCH when
 * the bytes do not hash to expect: the object is not stored (chunks already written stay as
 * unreferenced objects). abort drops it. */
typedef struct hl_writer hl_writer;
int hl_writer_open(hl_store *s, const hl_id *expect, hl_writer **out);
int hl_writer_write(hl_writer *w, const void *data, size_t len);
int hl_writer_close(hl_writer *w, hl_id *id, int *created);
void hl_writer_abort(hl_writer *w);

typedef struct hl_put_item {
	const void *data;
	size_t len;
	int check_id; /* in: nonzero ⇒ id is the expected id, verified */
	hl_id id;     /* out (or in, with check_id) */
	int created;  /* out: 1 if newly stored by this batch */
} hl_put_item;
/* Stores every item or none, at the cost of one sync. Any invalid item (HL_MISMATCH, HL_TOOBIG,
 * NULL data with nonzero len) rejects the whole batch before anything is written. Items
 * above the chunk threshold are stored as chunks, as hl_put stores them: the chunks, manifests
 * and small items in one batch, then every large id mapped in one index transaction. */
int hl_put_batch(hl_store *s, hl_put_item *items, size_t n);

/* The body of POST /v1/batch (docs/DESIGN.md, "HTTP API"): records "<64 lowercase hex id>
 * <decimal length>\n<length bytes>" back to back; one encoding per list of items. */
/* The bytes hl_batch_encode writes for items[0..n). */
size_t hl_batch_size(const hl_put_item *items, size_t n);
/* Encodes items[0..n) (their ids as given) into out[0..cap); *len the bytes written. HL_TOOBIG
 * when cap is short; HL_INVALID for NULL data with a nonzero len. */
int hl_batch_encode(const hl_put_item *items, size_t n, uint8_t *out, size_t cap, size_t *len);
/* Parses body[0..len) into items[0..cap) (data points into body, check_id set), *n of them.
 * HL_INVALID when malformed or empty (*where: the byte offset of the fault); HL_TOOBIG when it
 * holds more than cap records. */
int hl_batch_decode(const uint8_t *body, size_t len, hl_put_item *items, size_t cap, size_t *n,
                    size_t *where);

/* ---- reading (every byte returned has been verified against its id) ----
 * Gets are served from the L1 memory cache when they can (objects verified when first read),
 * else from disk (re-hashed on every read) and then cached. */
/* *out receives a new reference the caller releases with hl_buf_unref. */
int hl_get(hl_store *s, const hl_id *id, hl_buf **out);
/* Reads into dst. *len is set to the object's size; HL_TOOBIG (dst untouched) if cap is too small. */
int hl_get_into(hl_store *s, const hl_id *id, void *dst, size_t cap, size_t *len);
/* Reading an object piece by piece (large objects without holding them whole in memory): each
 * chunk is verified as it is read. hl_reader_read copies bytes [off, off + cap) and sets *n
 * (less than cap only at the end of the object). */
typedef struct hl_reader hl_reader;
int hl_reader_open(hl_store *s, const hl_id *id, hl_reader **out, uint64_t *size);
int hl_reader_read(hl_reader *r, uint64_t off, void *dst, size_t cap, size_t *n);
void hl_reader_close(hl_reader *r);
/* For an object stored whole: its verified buffer (a new reference; no copy). NULL for a chunked
 * object, which is read with hl_reader_read. */
hl_buf *hl_reader_whole(hl_reader *r);
/* 0 if present, HL_NOTFOUND if absent (including quarantined objects). */
int hl_has(hl_store *s, const hl_id *id);

enum { HL_STAT_COMPRESSED = 1, HL_STAT_CHUNKED = 2, /* stored as chunks + a manifest */
       HL_STAT_LINKS = 4, /* a tree or manifest: names other objects */
       HL_STAT_DELTA = 8 /* stored as a delta against another object */ };
typedef struct hl_stat {
	uint64_t size;        /* object bytes */
	uint64_t stored_size; /* bytes on disk including the record header (chunked: the manifest's) */
	uint32_t flags;       /* HL_STAT_* */
	uint32_t segment;     /* segment file number */
	uint64_t offset;      /* record offset in that segment */
	uint64_t atime;       /* last put/access, seconds since the epoch (refreshed lazily) */
} hl_stat;
int hl_stat_object(hl_store *s, const hl_id *id, hl_stat *out);

/* Calls fn for every stored object in id order; a nonzero return from fn stops the walk and is
 * returned. The walk sees one consistent snapshot of the store. */
typedef int (*hl_iter_fn)(const hl_id *id, const hl_stat *st, void *ctx);
int hl_iterate(hl_store *s, hl_iter_fn fn, void *ctx);

/* ---- integrity ---- */
/* Reads and re-hashes every object with `threads` threads (0 = all cores). fn (may be NULL) is
 * called for every object that fails, with HL_CORRUPT or the I/O error, from any thread but never
 * concurrently; corrupt records are quarantined (read-write handles). Objects already in
 * quarantine are reported too. progress (may be NULL) is called now and then with the bytes
 * checked so far. Returns 0 when all is well, HL_CORRUPT when anything failed verification. */
typedef struct hl_verify_report {
	uint64_t objects, bytes, corrupt, io_errors, quarantined;
	/* the index itself is damaged: its object table could be walked only this far (the objects
	 * after that point are unchecked; hl_rebuild_index makes a new index from the segments) */
	int index_damaged;
	uint64_t index_walked;
} hl_verify_report;
typedef void (*hl_verify_fn)(const hl_id *id, int err, void *ctx);
typedef void (*hl_progress_fn)(uint64_t done_bytes, uint64_t total_bytes, void *ctx);
int hl_verify(hl_store *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress, void *ctx,
              hl_verify_report *out);

/* The deeper check of a local store at rest (helios verify --deep), after hl_verify: the index
 * and the segment files agree — the totals equal the entries, every entry lies inside an existing
 * segment file, the newest segment ends at its last whole record. 0, or HL_CORRUPT with
 * *problems found (each logged); HL_INVALID on a remote backend. */
int hl_check_index(hl_store *s, uint64_t *problems);

/* Rebuilds the index of the local store at dir (which no process may have open) from the
 * segment files' self-describing records: every intact record is indexed again, a record that
 * fails verification is quarantined, and the names kept only in the index (refs, kv entries, the
 * large-blob map, the snapshot stat cache) are copied from the damaged index as far as it can be
 * read; each large blob's map entry is then derived again from its manifest. The damaged index
 * is kept beside the new one as index.damaged-<time>. */
typedef struct hl_rebuild_report {
	uint64_t records;      /* intact records read from the segments */
	uint64_t objects;      /* objects in the new index */
	uint64_t corrupt;      /* records that failed verification (quarantined unless a good copy
	                          exists) and unreadable stretches skipped */
	uint64_t names_copied; /* refs, kv entries, map entries copied from the damaged index */
	int names_damaged;     /* some name table could not be read to its end: names after the
	                          damage are lost (see docs/DESIGN.md, "Damaged index") */
	uint64_t large_derived; /* large-blob map entries derived again from manifests */
	uint64_t refs_dangling; /* refs naming an object that is not stored (a damaged row): kept, and
	                           counted in names_damaged */
	char saved[64];        /* the damaged index's new name inside dir ("" if there was none) */
} hl_rebuild_report;
int hl_rebuild_index(const char *dir, const hl_options *opt, hl_rebuild_report *out);

/* Scrubbing (read-write handles on a local backend): objects are re-read and re-hashed in index
 * order from a cursor kept in the store (<store>/scrub.cursor), so a scrub resumes where it
 * stopped, even after a restart. Every corrupt object found is quarantined, appended to
 * <store>/corruption.log, and repaired from the first source with a verified copy: the L1, then
 * hl_options.repair_from. hl_scrub reads about max_bytes of records and returns; *pass_done is
 * set when it reached the end (the next call starts over), *found counts corrupt objects. */
int hl_scrub(hl_store *s, uint64_t max_bytes, int *pass_done, uint64_t *found);
/* Scrubs in a background thread at bytes_per_s (at least 64 KiB/s), resting pause_s after each
 * whole pass, until hl_close. */
int hl_scrub_background(hl_store *s, uint64_t bytes_per_s, unsigned pause_s);
/* Replaces a corrupt (or quarantined) object by a verified copy from a repair source: 0 with the
 * source's name in *from ("l1", "s3", "helios"), HL_NOTFOUND when none has it (logged as
 * unrepairable), HL_INVALID on a handle that cannot repair (read-only, remote backend). */
int hl_repair(hl_store *s, const hl_id *id, const char **from);

/* ---- statistics ---- */
typedef struct hl_stats {
	uint64_t objects;        /* stored objects */
	uint64_t logical_bytes;  /* sum of object sizes */
	uint64_t stored_bytes;   /* bytes in records (headers + payloads) of stored objects */
	uint64_t segment_bytes;  /* size of all segment files (includes dead space) */
	uint64_t segments;       /* segment files */
	uint64_t quarantined;    /* records quarantined as corrupt */
	uint64_t compressed;     /* objects stored compressed */
	uint64_t deltas;         /* objects stored as deltas against a similar object (their object
	                            and record bytes below; also counted in the totals above) */
	uint64_t delta_raw_bytes, delta_stored_bytes;
	uint64_t chunked;        /* large objects stored as chunks (their chunks and manifests are
	                            counted in objects too) */
	uint64_t unindexed;      /* objects durable in segment files, not yet in the index (found
	                            from memory; a full disk keeps them there until it has room) */
	uint64_t index_memory_bytes; /* the index's copy in memory (hl_options.index_in_memory):
	                            bytes allocated; 0 while it is being built, or off */
	uint64_t disk_bytes, disk_free_bytes; /* the store's file system: size, and what an
	                            unprivileged writer may still use (0 when unknown) */
	/* counters since open */
	uint64_t puts, puts_new, gets, get_misses, corrupt_reads, syncs, commits, index_flushes;
	uint64_t sync_ns;        /* time spent in segment syncs (fdatasync), nanoseconds: over
	                            syncs, the disk's sync latency as writers see it */
	/* L1 memory cache */
	uint64_t l1_hits, l1_misses, l1_evictions, l1_bytes, l1_entries, l1_capacity;
	/* coordinator */
	uint64_t busy;           /* calls refused with HL_BUSY */
	uint64_t joined;         /* calls that shared a concurrent identical read or write */
	uint64_t limit_get, limit_has, limit_write; /* current admission bounds (0: unbounded) */
	uint64_t inflight;       /* operations below the L1 now */
	int health_score;        /* 0–100, see hl_health_get */
	/* integrity (since open): scrubbed objects and record bytes, whole passes, corrupt objects
	 * found by the scrubber or given to hl_repair, and how many were repaired or could not be */
	uint64_t scrub_objects, scrub_bytes, scrub_passes, scrub_corrupt, repaired, unrepairable;
	/* a remote backend: its L2 cache, the L1 warm-up from it, and the requests to the backend
	 * (retries, calls failed after them, times the circuit breaker opened; whether it is open) */
	uint64_t l2_hits, l2_misses, l2_corrupt, l2_bytes, l2_entries, l2_capacity, l2_promoted;
	uint64_t remote_requests, remote_retries, remote_failures, remote_breaker_opens;
	int remote_breaker_open;
} hl_stats;
/* On a shared backend (a bucket) the figures above that describe stored objects (objects, bytes,
 * segments, quarantined, chunked, compressed, unindexed) are this node's local store's: the
 * bucket's are counted by hl_backend_get. */
int hl_stats_get(hl_store *s, hl_stats *out);

/* The durable backend: what it is and, when count is set, what it holds, counted by listing it
 * (a bucket: one request per 1000 objects; a helios backend cannot be listed: counted stays 0). */
typedef struct hl_backend_info {
	char kind[8];      /* "local", "s3", "helios" */
	int shared;        /* other nodes write it too */
	int counted;       /* the figures below were counted */
	uint64_t objects;  /* stored objects (chunks and manifests included) */
	uint64_t bytes;    /* their sizes as the backend holds them */
	uint64_t chunked;  /* large blobs stored as chunks */
} hl_backend_info;
int hl_backend_get(hl_store *s, int count, hl_backend_info *out);

/* ---- metrics ---- */
enum { HL_OP_GET, HL_OP_HAS, HL_OP_PUT, HL_OP_BATCH, HL_OP_COUNT_ };
enum { HL_AT_L1, HL_AT_BELOW, HL_AT_ALL }; /* where a call was served: L1 hit, below it, either */
/* Latency since open of one operation (gets: by where they were served; the others: HL_AT_BELOW
 * or HL_AT_ALL). Percentiles are bucket upper edges: exact below 100 ns, within 10% above. */
typedef struct hl_latency {
	uint64_t count, mean_ns, p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
} hl_latency;
int hl_latency_get(hl_store *s, int op, int at, hl_latency *out);

/* Health 0–100 over the last evaluation window: errors, calls shed with HL_BUSY, p99 latency
 * below the L1 against thresholds, and corruption seen in the last 5 minutes cost points. Level
 * ok (≥ 80), degraded (≥ 50), unhealthy. Each level change is logged (a warning both when it
 * worsens and when it clears) and counted in alerts. */
enum { HL_HEALTH_OK, HL_HEALTH_DEGRADED, HL_HEALTH_UNHEALTHY };
typedef struct hl_health {
	int score, level;
	uint64_t alerts;  /* level changes since open */
	char reason[200]; /* what cost points, or "no problems seen" */
} hl_health;
int hl_health_get(hl_store *s, hl_health *out);

/* Every metric in the Prometheus text exposition format (version 0.0.4): store totals, counters,
 * L1, admission, latency histograms, health. *text is NUL-terminated; free it with free(). */
int hl_metrics_text(hl_store *s, char **text, size_t *len);

/* ---- refs: mutable names for objects, changed only by compare-and-swap ---- */
/* A ref name: components of [A-Za-z0-9._-] joined by '/', none empty or starting with '.', at
 * most HL_REF_MAX bytes ("agents/42/main"). Anything else is HL_INVALID. */
#define HL_REF_MAX 255
int hl_ref_valid(const char *name); /* 1 if valid */
int hl_ref_get(hl_store *s, const char *name, hl_id *out); /* HL_NOTFOUND if no such ref */
/* Points name at target if it now points at *expect; expect NULL: only if name does not exist.
 * HL_CONFLICT when that does not hold (nothing changed); HL_INCOMPLETE if target is not stored. */
int hl_ref_cas(hl_store *s, const char *name, const hl_id *expect, const hl_id *target);
/* Points name at target whatever it held. HL_INCOMPLETE if target is not stored. */
int hl_ref_set(hl_store *s, const char *name, const hl_id *target);
/* Deletes name if it points at *expect (expect NULL: whatever it points at). HL_NOTFOUND,
 * HL_CONFLICT. */
int hl_ref_delete(hl_store *s, const char *name, const hl_id *expect);
/* Calls fn for every ref whose name starts with prefix (NULL or "": all), in name order; a
 * nonzero return from fn stops the walk and is returned. */
typedef int (*hl_ref_fn)(const char *name, const hl_id *id, void *ctx);
int hl_ref_list(hl_store *s, const char *prefix, hl_ref_fn fn, void *ctx);

/* ---- kv namespaces: caches keyed by names that are not hashes (ccache, Bazel) ---- */
/* A namespace is 1..64 bytes of [A-Za-z0-9._:-]; a key is 1..HL_KV_KEY_MAX bytes without NUL.
 * A value is stored as an object (deduplicated like any other); the key points at it. Each
 * namespace holds at most hl_options.kv_max_bytes of values: storing past that evicts its least
 * recently used keys (access times are kept to the minute). kv values are GC roots until
 * evicted or deleted. On a shared backend the namespaces are the backend's, so every node sees
 * the same keys (a bucket keeps no LRU bound: the last writer of a key wins). */
#define HL_KV_KEY_MAX 400
int hl_kv_put(hl_store *s, const char *ns, const void *key, size_t klen, const void *data,
              size_t len);
int hl_kv_get(hl_store *s, const char *ns, const void *key, size_t klen, hl_buf **out);
int hl_kv_stat(hl_store *s, const char *ns, const void *key, size_t klen, uint64_t *size);
/* The id and size of the object the key names (id or size may be NULL). */
int hl_kv_lookup(hl_store *s, const char *ns, const void *key, size_t klen, hl_id *id,
                 uint64_t *size);
/* Points the key at an object already stored (HL_INCOMPLETE when it is not). */
int hl_kv_link(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id);
int hl_kv_delete(hl_store *s, const char *ns, const void *key, size_t klen);
/* Bytes of values and number of keys a namespace holds now. */
int hl_kv_usage(hl_store *s, const char *ns, uint64_t *bytes, uint64_t *keys);

/* ---- garbage collection ---- */
/* Objects reachable from a root are kept: refs (a pin is a ref, by convention under "pin/"), kv
 * values, and every object written or found present within hl_options.gc_grace_s, with
 * everything they name (a tree its entries, a chunked blob its manifest and chunks). The rest is
 * deleted from the index; segments whose live bytes fall below compact_below of their size are
 * rewritten and their files deleted. Runs online: puts, gets, snapshots and ref updates continue,
 * and an object a writer finds present while it runs is kept. */
typedef struct hl_gc_options {
	double compact_below; /* default 0.5; 0 = do not compact */
	int dry_run;          /* count what would be collected; change nothing */
	int repack;           /* 0 (default): no; else a zstd level (1..22, HL_REPACK_LEVEL is the
	                         usual): every record not yet repacked at that level is re-encoded at
	                         it, and as a delta against a similar object where that saves a quarter
	                         and no other delta depends on it (its segment is compacted; the
	                         object's id and bytes never change). Local stores only: HL_INVALID on
	                         a bucket, which keeps whole objects */
	unsigned repack_threads; /* threads encoding (0: half the CPUs, at least one) */
	uint64_t compact_rate;   /* bytes per second the compaction moves (records read and written
	                            again, the repack's included), so that a background pass takes a
	                            share of the disk and the CPU, not all of it; 0 (default): unpaced */
} hl_gc_options;
#define HL_REPACK_LEVEL 19
#define HL_REPACK_LEVEL_MAX 22
typedef struct hl_gc_report {
	uint64_t objects;         /* indexed objects when the collection began */
	uint64_t reachable;       /* of those, reached from a root */
	uint64_t young;           /* of those, within the grace period (roots themselves) */
	uint64_t held;            /* finds by writers during the collection (kept) */
	uint64_t collected, collected_bytes; /* deleted objects and their record bytes */
	uint64_t segments_removed, records_moved, bytes_moved, bytes_reclaimed;
	uint64_t records_repacked;  /* re-encoded by the repack, and their record bytes before and */
	uint64_t repack_bytes_before, repack_bytes_after; /* after (headers included) */
	uint64_t duration_ns;
	uint64_t kv_evicted;      /* on a shared bucket: kv keys past their namespace's kv_max_bytes,
	                             oldest writes first, removed by this collection */
} hl_gc_report;
void hl_gc_options_init(hl_gc_options *opt);
/* HL_BUSY if a collection is running; HL_CORRUPT if an object that may name others cannot be
 * read (then nothing is deleted: what it names is unknown). */
int hl_gc(hl_store *s, const hl_gc_options *opt, hl_gc_report *out);
/* Collects in a background thread every every_s seconds (the first every_s after the call) with
 * opt (NULL: defaults; with repack and compact_rate, a paced repack keeps a busy store dense),
 * each report logged, until hl_close, which stops a local compaction in progress after its
 * current batch (a shared bucket's collection runs to its end). HL_INVALID: every_s 0, a dry run,
 * or options hl_gc would refuse; HL_BUSY: already started. */
int hl_gc_background(hl_store *s, unsigned every_s, const hl_gc_options *opt);

/* ---- trees and snapshots ---- */
/* A tree is the canonical encoding of one directory (docs/DESIGN.md, "Data model"); a snapshot of
 * a work tree is the id of its root tree. */
enum { HL_TREE_FILE = 1, HL_TREE_DIR = 2, HL_TREE_SYMLINK = 3 };
typedef struct hl_tree_entry {
	int kind;          /* HL_TREE_FILE, HL_TREE_DIR, HL_TREE_SYMLINK */
	uint32_t mode;     /* permission bits (files, directories); 0 for symlinks */
	uint64_t size;     /* file bytes, symlink target bytes, 0 for directories */
	hl_id id;          /* content, subtree, or symlink target */
	const char *name;  /* in walks: NUL-terminated */
	size_t name_len;
} hl_tree_entry;

typedef struct hl_snapshot_stats {
	uint64_t files, dirs, symlinks, bytes; /* in the work tree */
	uint64_t new_objects, new_bytes;       /* of those, stored by this snapshot */
	uint64_t skipped;                      /* sockets, FIFOs, devices: not stored */
	uint64_t cached;                       /* files not read again: unchanged since they were
	                                          last hashed (the stat cache: size, mtime, ctime
	                                          and inode as then, stable for 2 s before) */
} hl_snapshot_stats;
/* Stores the work tree at dir (files hashed on all cores) and sets *root to its root tree id.
 * Refuses names a tree cannot hold (HL_INVALID, with the path logged). st may be NULL. */
int hl_snapshot(hl_store *s, const char *dir, unsigned threads, hl_id *root, hl_snapshot_stats *st);
/* hl_snapshot, where like (NULL: none) is a stored tree the work tree probably resembles (its
 * previous snapshot, or a sibling's): each new file, chunk and tree is stored as a delta against
 * the object at the same path in like when that saves at least a quarter of its compressed size
 * (a local store; elsewhere like changes nothing). Ids and what reads return are the same either
 * way. */
int hl_snapshot_like(hl_store *s, const char *dir, unsigned threads, const hl_id *like, hl_id *root,
                     hl_snapshot_stats *st);
/* The tree a new snapshot for ref is most likely to resemble: the snapshot ref names now, else
 * the newest snapshot among its siblings (the refs that share its name up to the last '/', at
 * most HL_LIKE_SIBLINGS_MAX of them looked at: agents working on copies of one repository).
 * HL_NOTFOUND when there is none. */
#define HL_LIKE_SIBLINGS_MAX 4096
int hl_snapshot_like_for(hl_store *s, const char *ref, hl_id *tree);
/* Recreates the tree root in dir (missing, its parents created too, or empty): content, permission bits, symlinks, empty
 * directories and files. Every object is verified; a tree that names an unsafe entry (.., /,
 * NUL) or breaks its format is HL_CORRUPT and nothing is written for it. */
int hl_restore(hl_store *s, const hl_id *root, const char *dir);
/* Calls fn for every entry under root, depth first in name order, with its path ("a/b/c"); a
 * nonzero return from fn stops the walk and is returned. */
typedef int (*hl_tree_fn)(const char *path, const hl_tree_entry *e, void *ctx);
int hl_tree_walk(hl_store *s, const hl_id *root, hl_tree_fn fn, void *ctx);
/* Calls fn for each entry of the tree encoded in buf[0..len) (name not NUL-terminated: use
 * name_len), in order; HL_INVALID if it is not a tree, HL_CORRUPT if it breaks the format. For
 * clients that fetch trees before storing them (a tree is stored only after what it names). */
typedef int (*hl_entry_fn)(const hl_tree_entry *e, void *ctx);
int hl_tree_parse(const void *buf, size_t len, hl_entry_fn fn, void *ctx);
/* Compares two trees: fn gets each path that was added (a NULL), deleted (b NULL) or changed
 * (kind, mode or content) between a and b, in path order. Identical subtrees are skipped by id. */
typedef int (*hl_diff_fn)(const char *path, const hl_tree_entry *a, const hl_tree_entry *b, void *ctx);
int hl_tree_diff(hl_store *s, const hl_id *a, const hl_id *b, hl_diff_fn fn, void *ctx);

/* ---- commits and history ----
 * A commit records one snapshot (its root tree) in a ref's history: its parents, time, author,
 * message, free key/value metadata and the counts `log` prints. Commits are objects like any
 * other (stored, verified, collected; the collector keeps a ref's commits, their trees and their
 * parents). A ref that snapshots move names the newest commit. docs/DESIGN.md, "History". */
#define HL_COMMIT_PARENTS_MAX 16
#define HL_COMMIT_META_MAX 64
#define HL_COMMIT_AUTHOR_MAX 255
#define HL_COMMIT_MESSAGE_MAX 65536
#define HL_COMMIT_VALUE_MAX 1024
typedef struct hl_commit_meta {
	const char *key;   /* 1..64 of [A-Za-z0-9._-] */
	const char *value; /* at most HL_COMMIT_VALUE_MAX bytes, no NUL */
} hl_commit_meta;
typedef struct hl_commit {
	hl_id tree;
	unsigned nparents;
	hl_id parents[HL_COMMIT_PARENTS_MAX];
	uint64_t time_ns;            /* nanoseconds since the Unix epoch, UTC */
	const char *author, *message;
	unsigned nmeta;
	hl_commit_meta meta[HL_COMMIT_META_MAX]; /* in key order once stored */
	uint64_t files, bytes;       /* in the snapshot */
	uint64_t new_bytes;          /* stored by it (what was not stored before) */
	uint32_t added, changed, deleted; /* paths, against the first parent's tree */
} hl_commit;
/* Decodes the commit encoded in buf[0..len) (every rule checked): *out is one allocation freed
 * by hl_commit_free. HL_INVALID when it is not a commit, HL_CORRUPT when it breaks the format. */
int hl_commit_parse(const void *buf, size_t len, hl_commit **out);
void hl_commit_free(hl_commit *c);
/* c as a JSON object (id, tree, parents, time as RFC 3339 UTC and time_ns, author, message,
 * meta, files, bytes, new_bytes, added, changed, deleted, older_history_forgotten, parent_forgotten and
 * parent_missing from hl_history's flags): what the CLI and the server print. malloc'd; NULL
 * when memory ran out. */
char *hl_commit_json(const hl_id *id, const hl_commit *c, unsigned flags);
/* A stored commit (HL_INVALID: the object is not one). */
int hl_commit_get(hl_store *s, const hl_id *id, hl_commit **out);
/* Stores c (its meta put in key order) and sets *id. HL_INCOMPLETE when its tree is not stored;
 * HL_INVALID for a broken rule (too long, bad key, duplicate key or parent). */
int hl_commit_put(hl_store *s, hl_commit *c, hl_id *id);

typedef struct hl_commit_options {
	const char *author, *message;   /* NULL: "" */
	const hl_commit_meta *meta;
	unsigned nmeta;
	uint64_t time_ns;               /* 0: now */
	int retry;                      /* when the ref moved meanwhile: re-read it, re-parent, try
	                                   again (up to 1000 times) instead of HL_CONFLICT */
} hl_commit_options;
/* Records tree (a stored snapshot, st its counts or NULL) as a new commit whose parent is ref's
 * commit (none when ref does not exist, or names a tree as refs did before history), and moves
 * ref to it by compare-and-swap: HL_CONFLICT when ref moved meanwhile and o->retry is off; then
 * nothing names the commit and it is collected like any unreachable object. */
int hl_commit_ref(hl_store *s, const char *ref, const hl_id *tree, const hl_snapshot_stats *st,
                  const hl_commit_options *o, hl_id *commit, hl_commit **out);

/* Revisions: a ref name, a 64-hex id, a unique prefix (4..63 hex) of a commit in some ref's
 * history, each followed by any of "~N" (N-th first parent), "^" (first parent), "^N" (N-th
 * parent) and at most one "@{TIME}" (the newest commit in the first-parent history at or before
 * TIME: "2026-12-06", "2026-12-06T05:00[:00][Z]", "@<unix seconds>", or "<N>s|m|h|d|w" ago).
 * *commit gets the commit, *tree its root tree (either may be NULL); when the base names an
 * object that is no commit (a tree, as refs named before history), both get that object.
 * HL_NOTFOUND (no such ref, commit, or ancestor), HL_INVALID (malformed; a suffix on what is no
 * commit), HL_AMBIGUOUS, HL_FORGOTTEN (retention dropped that commit's snapshot). */
int hl_rev_parse(hl_store *s, const char *rev, hl_id *commit, hl_id *tree);

/* History newest first from commit `from` over every parent (each commit once, by time, then id):
 * fn gets each commit older than before_ns (0: no bound) until limit (0: all) were given or fn
 * returns nonzero (returned). flags: HL_HIST_CUT when all older history was forgotten at it,
 * HL_HIST_GAP when a parent was forgotten (older kept commits follow), HL_HIST_MISSING when a
 * parent is not stored (not forgotten: history not transferred). Commits that retention forgot
 * are not given. */
enum { HL_HIST_CUT = 1, HL_HIST_MISSING = 2, HL_HIST_GAP = 4 };
typedef int (*hl_history_fn)(const hl_id *id, const hl_commit *c, unsigned flags, void *ctx);
int hl_history(hl_store *s, const hl_id *from, uint64_t before_ns, uint64_t limit, hl_history_fn fn,
               void *ctx);

/* Retention, by restic's rules for `forget`: each ref under prefix is a group; its history (what
 * hl_history gives) newest first; a commit is kept when within `within` of the newest commit
 * (strictly after newest − within, calendar years/months/days and hours), or it is among the
 * newest `last`, or it is the newest of its hour/day/ISO week/month/year while that rule has
 * counts left (-1: unlimited; the oldest commit takes a count left over). Buckets are in UTC.
 * A ref's newest commit is always kept, and so is every commit a ref outside prefix reaches.
 * What is not kept is forgotten: its snapshot is no longer kept through it, and history older
 * than a ref's oldest kept commit is cut; the commits kept are not rewritten. hl_gc then frees
 * what only forgotten history reached. An empty policy forgets nothing (HL_INVALID). */
typedef struct hl_forget_policy {
	int last, hourly, daily, weekly, monthly, yearly; /* 0: rule off; -1: unlimited */
	int within_years, within_months, within_days, within_hours;
} hl_forget_policy;
typedef struct hl_forget_report {
	uint64_t refs, commits, kept, forgotten, cut;
} hl_forget_report;
/* fn (may be NULL) gets every commit decided: keep, and why ("last", "daily", …, comma
 * separated; "" when forgotten). */
typedef int (*hl_forget_fn)(const char *ref, const hl_id *id, const hl_commit *c, int keep,
                            const char *why, void *ctx);
int hl_forget(hl_store *s, const char *prefix, const hl_forget_policy *p, int dry_run,
              hl_forget_fn fn, void *ctx, hl_forget_report *out);

/* ---- diagnostics ---- */
/* Where helios's own log lines go (corruption found, recovery done, sync failures). The default
 * writes "helios: <level>: <text>" to stderr, filtered by $HELIOS_LOG (error|warn|info|debug,
 * default warn). fn NULL restores the default. level: 0 error, 1 warning, 2 info, 3 debug. */
typedef void (*hl_log_fn)(int level, const char *line);
void hl_set_logger(hl_log_fn fn);

/* ---- configuration files ---- */
/* Parses INI text: `[section]` lines, `key = value` lines, comments starting with '#' or ';'
 * (whole lines, or after whitespace at the end of a value), blank lines. fn is called for every
 * entry in order, with *line set to its line number; a nonzero return from fn stops the parse and
 * is returned. A line that is none of these, holds a NUL, or is longer than libinih's line limit
 * (199 bytes in Debian's build) gives HL_INVALID with *line set to it. */
typedef int (*hl_config_fn)(const char *section, const char *key, const char *value, unsigned line,
                            void *ctx);
int hl_config_parse(const char *text, size_t len, hl_config_fn fn, void *ctx, unsigned *line);

/* Forces everything written so far to stable storage (any sync mode). 0 means every object
 * written so far is durable. When only the index cannot take them (no space left on the device),
 * the objects are still durable in their segment files, which the next open reads again: that is
 * logged (a warning naming how many) and is not an error. */
int hl_sync(hl_store *s);

#if defined(__GNUC__)
/* ---- push and pull: snapshots between this store and a `helios serve` ----
 * Only what the other side lacks moves; every byte fetched is verified against its id. url is
 * "http://host:port" (or https); token a bearer token or NULL. Errors: EACCES (the token was
 * refused: 401/403), HL_UNAVAILABLE (the server cannot be reached), HL_CORRUPT (it sent bytes that
 * do not hash to the id asked for), HL_NOTFOUND (pull: no such ref or object there). */
typedef struct hl_transfer_report {
	uint64_t objects;     /* push: distinct objects in the snapshot */
	uint64_t moved;       /* objects uploaded (push) or fetched (pull) */
	uint64_t moved_bytes;
	uint64_t batches;     /* push: upload requests */
	long status;          /* after a failure: the HTTP status that refused it (401, 403…), or 0 */
	char detail[160];     /* after a failure to reach the server: what the connection said */
} hl_transfer_report;
/* Uploads what the server lacks of the snapshot root, a tree (children before what names them);
 * a commit's history is not pushed (pass its tree: hl_rev_parse). Then,
 * when ref is not NULL, moves ref to root by compare-and-swap against what the server holds now
 * (HL_CONFLICT when it moved meanwhile: nothing is retried). */
int hl_push(hl_store *s, const hl_id *root, const char *url, const char *token, const char *ref,
            hl_transfer_report *out);
/* Fetches the objects of snapshot rev (64 hex, a ref name, or any revision the server resolves:
 * R~N, R^, R@{TIME}, a prefix) that this store lacks, each tree after what it names, then syncs;
 * *root gets the snapshot's root tree. A commit stands for its snapshot: it is stored too, after
 * its tree (its history stays on the server). HL_INVALID when rev is malformed or names neither a
 * tree nor a commit; HL_FORGOTTEN when retention there dropped it. */
int hl_pull(hl_store *s, const char *url, const char *token, const char *rev, hl_id *root,
            hl_transfer_report *out);

#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
