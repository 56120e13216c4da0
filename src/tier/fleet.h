/* fleet.h — this node's side of the collection protocol of a shared backend (docs/DESIGN.md,
 * "Collecting a shared bucket"), and the formats it shares with the collector (dedup/fleetgc.c).
 *
 * The node wraps the backend and the coordinator's tier. It remembers what it relied on lately
 * (an object found present by has or by a put, a large blob found mapped), polls the bucket's
 * collection state, and keeps a heartbeat there. When a collection publishes the objects it
 * condemned, the node claims "keep" for each it relied on, then acknowledges; from then on it
 * relies on no condemned object: has says absent (the writer stores it again), a put of one
 * claims it first (or, when the collector claimed it for deletion, waits until it is gone and
 * stores it anew). A node whose view of the state is older than the lease does not rely on
 * anything until it has looked again. */
#ifndef HL_TIER_FLEET_H
#define HL_TIER_FLEET_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "tier/backend.h"

/* Control keys (under the backend's prefix). */
#define HL_FLEET_STATE "gc/state"
#define HL_FLEET_NODES "gc/nodes/"   /* + node id: heartbeat */
/* gc/<cid>/condemned, gc/<cid>/claims/<B|L><hex id>, gc/<cid>/acks/<node id> */

enum { HL_FLEET_MARK = 1, HL_FLEET_SWEEP, HL_FLEET_DONE };

/* The state object: "helios-gc 1\ncid <16 hex>\nphase mark|sweep|done\nlease <ms>\nowner <16 hex>\n".
 * lease: how long after this write the collector may still act (it renews by rewriting). */
typedef struct hl_fleet_state {
	char cid[17], owner[17];
	int phase;
	uint64_t lease_ms;
} hl_fleet_state;
int hl_fleet_state_parse(const uint8_t *b, size_t len, hl_fleet_state *out); /* HL_CORRUPT */
int hl_fleet_state_format(const hl_fleet_state *st, char *out, size_t cap);  /* its length */

/* A condemned entry: an object ('B') or a large-blob map entry ('L'). The list's encoding:
 * "HLGD", version u8 (1), reserved [3], count u64 LE, then count entries of kind u8 + id[32] in
 * strictly increasing order (kind, then id). */
#define HL_FLEET_OBJECT 'B'
#define HL_FLEET_LARGE 'L'
typedef struct hl_fleet_victim {
	uint8_t kind;
	hl_id id;
} hl_fleet_victim;
int hl_fleet_list_parse(const uint8_t *b, size_t len, hl_fleet_victim **out, size_t *n); /* HL_CORRUPT */
int hl_fleet_list_encode(const hl_fleet_victim *v, size_t n, uint8_t **out, size_t *len);
int hl_fleet_victim_cmp(const void *a, const void *b);
/* "gc/<cid>/claims/<kind><hex>"; bodies "keep\n" or "delete\n". */
void hl_fleet_claim_key(const char *cid, uint8_t kind, const hl_id *id, char out[128]);
/* A random 16-hex name (collection and node ids). */
void hl_fleet_random_id(char out[17]);

typedef struct hl_fleet_config {
	unsigned lease_ms;      /* how stale a view may be (default 10000) */
	uint64_t remember_s;    /* relies are remembered this long: the grace period */
	size_t remember_max;    /* the ring's size (default 1 << 20); it grows rather than forget
	                           one still inside remember_s */
} hl_fleet_config;

typedef struct hl_fleet hl_fleet;
/* inner: the backend (HL_BE_FLEET); objects: the tier the coordinator would use (the L2 stack
 * over inner). Starts the watcher thread. */
int hl_fleet_new(hl_backend inner, hl_tier objects, const hl_fleet_config *cfg, hl_fleet **out);
hl_backend hl_fleet_backend(hl_fleet *f); /* inner, with large_has and large_put_n guarded */
hl_tier hl_fleet_tier(hl_fleet *f);       /* objects, with has and put_batch guarded */
const char *hl_fleet_node(hl_fleet *f);   /* this node's id */
void hl_fleet_free(hl_fleet *f);

#endif
