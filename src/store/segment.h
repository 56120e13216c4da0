/* segment.h — the set of append-only segment files of one store: naming, lazily opened read
 * descriptors shared by all threads, and the single writer's append position.
 * Reads may come from any thread without a lock; appends, rolls and truncation come from the one
 * thread that holds the store's commit lock. */
#ifndef HL_STORE_SEGMENT_H
#define HL_STORE_SEGMENT_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct hl_segdir hl_segdir;

typedef struct hl_segset {
	char *dir;                    /* <store>/segments */
	int read_only;
	uint64_t segment_size;
	pthread_mutex_t open_mu;      /* serialises opening, removing and growing the table */
	_Atomic(hl_segdir *) dir_tab; /* segno → its slot (descriptor and holders); replaced (never
	                                 freed before close) on growth */
	hl_segdir *retired;           /* older directories, freed at close */
	/* writer state */
	uint32_t active;              /* segment being appended to (0: none yet) */
	uint64_t tail;                /* append offset in it */
	uint32_t res_seg;             /* the segment whose space is reserved ahead of its tail... */
	uint64_t res_end;             /* ...up to here (fallocate, the file's size unchanged) */
	_Atomic int sync_err;         /* a sync of a new segment or of the directory failed: the
	                                 store stops writes (fail-stop) */
} hl_segset;

int hl_segs_open(hl_segset *ss, const char *store_dir, int read_only, uint64_t segment_size);
void hl_segs_close(hl_segset *ss);

/* A hold on the descriptor of segment segno (opened on first use): it stays open, and its number
 * names this file, until hl_segs_release, even when compaction removes the file meanwhile.
 * ENOENT if the file is missing or removed. Every hold is released, on every path. */
int hl_segs_hold(hl_segset *ss, uint32_t segno, int *fd);
void hl_segs_release(hl_segset *ss, uint32_t segno);
/* The size of segment segno's file, read under a hold: 0, ENOENT when missing or removed, or the
 * error. */
int hl_segs_size(hl_segset *ss, uint32_t segno, uint64_t *size);

/* Writer: makes segno active with its append position at tail (truncating anything after it),
 * creating the file with its header when create is set. */
int hl_segs_activate(hl_segset *ss, uint32_t segno, uint64_t tail, int create);
/* Writer: the position where a record of len bytes will go, rolling to a new segment (created
 * and made durable, header included) when the active one would pass segment_size. */
int hl_segs_reserve(hl_segset *ss, uint64_t len, uint32_t *segno, uint64_t *off);
/* Deletes segment segno's file (never the active one); its descriptor is closed now, or by the
 * release of its last hold. New holds fail ENOENT. For compaction, once no index entry points
 * into it. */
int hl_segs_remove(hl_segset *ss, uint32_t segno);
/* Lists existing segment numbers in ascending order (caller frees *out). */
int hl_segs_list(hl_segset *ss, uint32_t **out, size_t *n);
/* Total bytes of all segment files. */
int hl_segs_bytes(hl_segset *ss, uint64_t *bytes, uint64_t *count);
/* Path of segment segno into buf. */
void hl_segs_path(const hl_segset *ss, uint32_t segno, char *buf, size_t cap);

#endif
