/* fleetgc.c — the shared backend's collector (see fleetgc.h and tier/fleet.h):
 *  1. takes the bucket's collection state (a conditional write; a stale one is taken over);
 *  2. lists objects, large-blob map entries and link markers with their ages, refs and kv;
 *  3. marks from refs, kv values, and everything younger than the grace period;
 *  4. publishes what is left and old as condemned, and waits until every live node acknowledged
 *     it (each claims "keep" first for what it relied on lately);
 *  5. keeps everything the keep claims reach, then for each remaining object claims it for
 *     deletion (a conditional write: a node's keep claim wins if it came first) and deletes it;
 *  6. marks the collection done and removes its control keys.
 * Link markers (links/<ab>/<id>, written before each tree or manifest) tell it which objects to
 * read; they are never removed (one removed under a writer storing its tree anew would hide the
 * tree's children from the next collection).
 * It renews its lease as it goes and stops deleting when it cannot. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/grow.h"
#include "base/log.h"
#include "dedup/fleetgc.h"
#include "dedup/links.h"
#include "tier/fleet.h"

#define DELETERS 8

typedef struct entry {
	hl_id id, manifest; /* manifest: large-map entries */
	uint64_t size;
	int64_t mtime_ms;
	uint8_t marked, links; /* links: announced as a tree or manifest (read when marked) */
} entry;

typedef struct vec {
	entry *v;
	size_t n, cap;
} vec;

typedef struct fc {
	hl_backend be;
	const hl_fleet_gc_options *o;
	hl_gc_report *r;
	hl_fleet_state st;
	char etag[96];
	uint64_t lease_ms;      /* the collector's lease: 6 node leases */
	uint64_t deadline_ns;   /* stop acting past this (renew before) */
	vec blobs, large;
	hl_id *links;           /* objects announced as trees or manifests */
	size_t nlinks, caplinks;
	hl_id *stack;           /* marked objects to read */
	size_t nstack, capstack;
	int64_t cutoff_ms;
} fc;

static int cmp_entry(const void *a, const void *b)
{
	return memcmp(((const entry *)a)->id.b, ((const entry *)b)->id.b, HL_ID_LEN);
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, HL_ID_LEN);
}

/* bsearch's comparison of a key id with an entry (the key is an id, not an entry) */
static int cmp_key_entry(const void *key, const void *e)
{
	return memcmp(key, ((const entry *)e)->id.b, HL_ID_LEN);
}

static entry *find(const vec *v, const hl_id *id)
{
	return v->n ? bsearch(id, v->v, v->n, sizeof(entry), cmp_key_entry) : NULL;
}

/* qsort of n elements; a NULL array (nothing listed) is left alone */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static int add_entry(vec *v, const hl_id *id, uint64_t size, int64_t mtime)
{
	entry *p = hl_grow(v->v, v->n, &v->cap, sizeof(entry), 1024);
	if (!p)
		return ENOMEM;
	v->v = p;
	v->v[v->n++] = (entry){.id = *id, .size = size, .mtime_ms = mtime};
	return 0;
}

static int on_blob(const hl_id *id, uint64_t size, int64_t mtime, void *c) { return add_entry(&((fc *)c)->blobs, id, size, mtime); }
static int on_large(const hl_id *id, uint64_t size, int64_t mtime, void *c) { return add_entry(&((fc *)c)->large, id, size, mtime); }

static int on_marker(const hl_key_entry *e, void *arg)
{
	fc *c = arg;
	hl_id id;
	if (e->len != 6 + 3 + HL_ID_HEX_LEN || hl_id_parse(e->key + 9, HL_ID_HEX_LEN, &id)) /* links/ab/<hex> */
		return 0;
	hl_id *p = hl_grow(c->links, c->nlinks, &c->caplinks, sizeof(hl_id), 256);
	if (!p)
		return ENOMEM;
	c->links = p;
	c->links[c->nlinks++] = id;
	return 0;
}

typedef struct mtime_of {
	const char *key;
	int64_t ms;
} mtime_of;

static int on_mtime(const hl_key_entry *e, void *arg)
{
	mtime_of *m = arg;
	if (e->len == strlen(m->key) && !memcmp(e->key, m->key, e->len))
		m->ms = e->mtime_ms;
	return 0;
}

/* The LastModified of a control key (0 when absent). */
static int key_mtime(fc *c, const char *key, int64_t *ms)
{
	mtime_of m = {key, 0};
	int err = c->be.ops->key_list(c->be.self, key, on_mtime, &m);
	*ms = m.ms;
	return err;
}

/* The bucket's clock now: the LastModified of a key written just now (with a body of its own:
 * a store may keep the time of a file rewritten with the same empty bytes). */
static int bucket_now(fc *c, int64_t *ms)
{
	char body[64];
	int len = snprintf(body, sizeof body, "%s %llu\n", c->st.cid, (unsigned long long)hl_now_ns());
	int err = c->be.ops->key_put(c->be.self, "gc/clock", body, (size_t)len, NULL, NULL);
	if (!err && (err = key_mtime(c, "gc/clock", ms)) == 0 && !*ms)
		err = EPROTO;
	return err;
}

/* Writes the state (phase) under the lease: cond is the ETag held, or "*" / another's ETag when
 * taking it. HL_CONFLICT: someone else has it now. */
static int write_state(fc *c, int phase, const char *cond)
{
	char body[256];
	c->st.phase = phase;
	c->st.lease_ms = c->lease_ms;
	int len = hl_fleet_state_format(&c->st, body, sizeof body);
	uint64_t t0 = hl_now_ns();
	int err = c->be.ops->key_put(c->be.self, HL_FLEET_STATE, body, (size_t)len, cond, c->etag);
	if (!err)
		c->deadline_ns = t0 + (c->lease_ms - c->o->lease_ms) * 1000000u;
	return err;
}

/* Renews the lease when half of it is gone; HL_CONFLICT when it was lost (then stop). */
static int keep_lease(fc *c)
{
	uint64_t now = hl_now_ns();
	if (now < c->deadline_ns && c->deadline_ns - now > c->lease_ms * 500000u)
		return 0;
	char cond[96];
	snprintf(cond, sizeof cond, "%s", c->etag);
	int err = write_state(c, c->st.phase, cond);
	if (err)
		hl_log(HL_LOG_ERROR, "gc: collection %s lost its lease (%s); it stops here", c->st.cid, hl_strerror(err));
	return err;
}

/* Takes the collection state: free, done, or left by a collector past its lease. *old: the cid
 * of a collection taken over (its keys are removed at the end). */
static int acquire(fc *c, char old[17])
{
	hl_buf *b = NULL;
	char etag[96];
	old[0] = 0;
	int err = c->be.ops->key_get(c->be.self, HL_FLEET_STATE, &b, etag);
	if (err == HL_NOTFOUND) {
		err = write_state(c, HL_FLEET_MARK, "*");
		return err == HL_CONFLICT ? HL_BUSY : err;
	}
	if (err)
		return err;
	hl_fleet_state prev;
	err = hl_fleet_state_parse(hl_buf_data(b), hl_buf_len(b), &prev);
	hl_buf_unref(b);
	if (err) {
		hl_log(HL_LOG_WARN, "gc: the bucket's %s is unreadable; taking it over", HL_FLEET_STATE);
	} else if (prev.phase != HL_FLEET_DONE) {
		int64_t now, state_mtime;
		if ((err = bucket_now(c, &now)) != 0 || (err = key_mtime(c, HL_FLEET_STATE, &state_mtime)) != 0)
			return err;
		if (now - state_mtime <= (int64_t)(prev.lease_ms + c->o->lease_ms)) {
			hl_log(HL_LOG_INFO, "gc: collection %s (node %s) is running", prev.cid, prev.owner);
			return HL_BUSY;
		}
		hl_log(HL_LOG_WARN, "gc: collection %s of node %s stopped before its end; taking over",
		       prev.cid, prev.owner);
		snprintf(old, 17, "%s", prev.cid);
	} else {
		snprintf(old, 17, "%s", prev.cid); /* done: its keys may linger after a crash */
	}
	err = write_state(c, HL_FLEET_MARK, etag);
	return err == HL_CONFLICT ? HL_BUSY : err;
}

static int on_ref(const char *name, const hl_id *id, void *arg);
static int mark(fc *c, const hl_id *id);

static int push(fc *c, const hl_id *id)
{
	hl_id *p = hl_grow(c->stack, c->nstack, &c->capstack, sizeof(hl_id), 256);
	if (!p)
		return ENOMEM;
	c->stack = p;
	c->stack[c->nstack++] = *id;
	return 0;
}

/* Marks id (an object, a large blob, or both) and queues what it names. */
static int mark(fc *c, const hl_id *id)
{
	entry *b = find(&c->blobs, id), *l = find(&c->large, id);
	int err = 0;
	if (b && !b->marked) {
		b->marked = 1;
		c->r->reachable++;
		if (b->links)
			err = push(c, id);
	}
	if (!err && l && !l->marked) {
		l->marked = 1;
		err = mark(c, &l->manifest);
	}
	return err;
}

static int on_ref(const char *name, const hl_id *id, void *arg)
{
	(void)name;
	return mark(arg, id);
}

static int on_kv(const hl_id *id, void *arg)
{
	return mark(arg, id);
}

static int mark_child(const hl_id *child, void *arg)
{
	return mark(arg, child);
}

/* Reads every queued tree and manifest and marks what it names. */
static int drain(fc *c)
{
	int err = 0;
	while (!err && c->nstack) {
		hl_id id = c->stack[--c->nstack];
		hl_buf *b;
		if ((err = c->be.ops->obj.get(c->be.self, &id, &b)) == HL_NOTFOUND) {
			err = 0; /* gone since the listing (its marker was early) */
			continue;
		}
		if (err) {
			char hex[HL_ID_HEX_LEN + 1];
			hl_id_format(&id, hex);
			hl_log(HL_LOG_ERROR, "gc: cannot read %s, which may name other objects (%s); nothing is collected",
			       hex, hl_strerror(err));
			return err == HL_CORRUPT ? HL_CORRUPT : err;
		}
		err = hl_links_each_kept(hl_buf_data(b), hl_buf_len(b), &id, c->o->forgotten, mark_child, c);
		hl_buf_unref(b);
		if (!err)
			err = keep_lease(c);
	}
	return err;
}

static int load_manifests(fc *c)
{
	for (size_t i = 0; i < c->large.n; i++) {
		uint64_t size;
		int err = c->be.ops->large_get(c->be.self, &c->large.v[i].id, &c->large.v[i].manifest, &size);
		if (err == HL_NOTFOUND)
			continue; /* gone since the listing: names nothing */
		if (err)
			return err;
	}
	return 0;
}

typedef struct keys {
	char (*k)[128];
	size_t n, cap;
} keys;

static int on_key(const hl_key_entry *e, void *arg)
{
	keys *k = arg;
	if (e->len >= 128)
		return 0;
	void *p = hl_grow(k->k, k->n, &k->cap, sizeof(*k->k), 64);
	if (!p)
		return ENOMEM;
	k->k = p;
	memcpy(k->k[k->n], e->key, e->len);
	k->k[k->n++][e->len] = 0;
	return 0;
}

static int list_keys(fc *c, const char *under, keys *k)
{
	k->n = 0;
	return c->be.ops->key_list(c->be.self, under, on_key, k);
}

/* The nodes alive now (a heartbeat within three leases by the bucket's clock). */
typedef struct live {
	keys k;
	int64_t since;
} live;

static int on_node(const hl_key_entry *e, void *arg)
{
	live *l = arg;
	return e->mtime_ms >= l->since ? on_key(e, &l->k) : 0;
}

/* Waits until every live node acknowledged the condemned list. The live nodes are looked up
 * each time: one that stopped beating its heart (killed, cut off) cannot rely on anything (a
 * node relies only with a view younger than the lease, and each look beats the heart), so it
 * leaves the wait once its heartbeat is three leases old. */
static int wait_acks(fc *c)
{
	char under[64];
	snprintf(under, sizeof under, "gc/%s/acks/", c->st.cid);
	keys acks = {NULL, 0, 0};
	live l = {{NULL, 0, 0}, 0};
	uint64_t give_up = hl_now_ns() + 10u * c->o->lease_ms * 1000000u;
	int64_t first = 0;
	int err = 0;
	for (size_t missing = 1; !err && missing;) {
		int64_t now;
		l.k.n = 0;
		if ((err = bucket_now(c, &now)) != 0)
			break;
		if (!first)
			first = now;
		l.since = now - 3 * (int64_t)c->o->lease_ms;
		if ((err = c->be.ops->key_list(c->be.self, HL_FLEET_NODES, on_node, &l)) != 0 ||
		    (err = list_keys(c, under, &acks)) != 0 || (err = keep_lease(c)) != 0)
			break;
		missing = 0;
		const char *one = NULL;
		for (size_t i = 0; i < l.k.n; i++) {
			const char *node = l.k.k[i] + strlen(HL_FLEET_NODES);
			int seen = 0;
			for (size_t j = 0; j < acks.n && !seen; j++)
				seen = !strcmp(acks.k[j] + strlen(under), node);
			missing += !seen;
			if (!seen)
				one = node;
		}
		/* gives up on a node that stays live (it beats its heart) without acknowledging; a
		 * stopped one had time to age out first */
		if (missing && hl_now_ns() > give_up && now - first >= 4 * (int64_t)c->o->lease_ms) {
			hl_log(HL_LOG_ERROR, "gc: %zu live node(s) (node %s among them) did not acknowledge collection %s "
			       "in time; nothing is deleted", missing, one, c->st.cid);
			err = HL_UNAVAILABLE;
		} else if (missing) {
			hl_sleep_ms(c->o->lease_ms / 8 ? c->o->lease_ms / 8 : 1);
		}
	}
	free(l.k.k);
	free(acks.k);
	return err;
}

/* Keeps (with all they name) the objects nodes claimed while the list was being acknowledged. */
static int honour_keeps(fc *c)
{
	char under[64];
	snprintf(under, sizeof under, "gc/%s/claims/", c->st.cid);
	keys k = {NULL, 0, 0};
	int err = list_keys(c, under, &k);
	size_t skip = strlen(under);
	for (size_t i = 0; i < k.n && !err; i++) {
		hl_id id;
		const char *name = k.k[i] + skip;
		if (strlen(name) != 1 + HL_ID_HEX_LEN || hl_id_parse(name + 1, HL_ID_HEX_LEN, &id))
			continue;
		c->r->held++;
		entry *e = find(name[0] == HL_FLEET_LARGE ? &c->large : &c->blobs, &id);
		if (e && !e->marked) {
			if (name[0] == HL_FLEET_LARGE) {
				e->marked = 1;
				err = mark(c, &e->manifest);
			} else {
				err = mark(c, &id);
			}
		}
	}
	free(k.k);
	return err ? err : drain(c);
}

typedef struct sweep {
	fc *c;
	hl_fleet_victim *v;
	size_t n;
	atomic_size_t next;
	atomic_int err;
	atomic_uint_fast64_t collected, bytes;
	pthread_mutex_t mu; /* the lease */
} sweep;

static void *delete_some(void *arg)
{
	sweep *s = arg;
	fc *c = s->c;
	for (size_t i; !atomic_load(&s->err) && (i = atomic_fetch_add(&s->next, 1)) < s->n;) {
		pthread_mutex_lock(&s->mu);
		int err = keep_lease(c);
		pthread_mutex_unlock(&s->mu);
		if (!err && hl_now_ns() >= c->deadline_ns)
			err = HL_CONFLICT;
		char key[128];
		hl_fleet_claim_key(c->st.cid, s->v[i].kind, &s->v[i].id, key);
		if (!err && (err = c->be.ops->key_put(c->be.self, key, "delete\n", 7, "*", NULL)) == HL_CONFLICT) {
			err = 0; /* a node keeps it */
			continue;
		}
		int large = s->v[i].kind == HL_FLEET_LARGE;
		if (!err)
			err = c->be.ops->remove(c->be.self, large ? HL_BE_LARGE : HL_BE_BLOB, &s->v[i].id);
		if (!err && !large) { /* its link marker stays: a marker without its object is harmless,
		                         and one removed under a writer storing it anew would not be */
			entry *e = find(&c->blobs, &s->v[i].id);
			atomic_fetch_add(&s->collected, 1);
			atomic_fetch_add(&s->bytes, e ? e->size : 0);
		}
		if (err) {
			int zero = 0;
			atomic_compare_exchange_strong(&s->err, &zero, err);
		}
	}
	return NULL;
}

static int delete_condemned(fc *c, hl_fleet_victim *v, size_t n)
{
	sweep s = {.c = c, .v = v, .n = n};
	pthread_mutex_init(&s.mu, NULL);
	pthread_t th[DELETERS];
	size_t started = 0;
	for (; started < DELETERS - 1 && started + 1 < n; started++)
		if (pthread_create(&th[started], NULL, delete_some, &s))
			break;
	delete_some(&s);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&s.mu);
	c->r->collected += atomic_load(&s.collected);
	c->r->collected_bytes += atomic_load(&s.bytes);
	return atomic_load(&s.err);
}

/* Removes a collection's control keys (condemned list, claims, acks). */
static void remove_keys(fc *c, const char *cid)
{
	char under[64];
	keys k = {NULL, 0, 0};
	snprintf(under, sizeof under, "gc/%s/", cid);
	if (list_keys(c, under, &k) == 0)
		for (size_t i = 0; i < k.n; i++)
			c->be.ops->key_delete(c->be.self, k.k[i]);
	free(k.k);
}

static int collect(fc *c)
{
	int64_t now;
	int err = bucket_now(c, &now);
	c->cutoff_ms = now - (int64_t)c->o->grace_s * 1000;
	/* objects before markers: a tree's marker is written before the tree, so every tree listed
	 * here has its marker listed after */
	if (!err)
		err = c->be.ops->list_aged(c->be.self, HL_BE_BLOB, on_blob, c);
	if (!err)
		err = c->be.ops->key_list(c->be.self, "links/", on_marker, c);
	if (!err)
		err = c->be.ops->list_aged(c->be.self, HL_BE_LARGE, on_large, c);
	if (err)
		return err;
	sort(c->blobs.v, c->blobs.n, sizeof(entry), cmp_entry);
	sort(c->large.v, c->large.n, sizeof(entry), cmp_entry);
	sort(c->links, c->nlinks, sizeof(hl_id), cmp_id);
	for (size_t i = 0; i < c->blobs.n; i++)
		c->blobs.v[i].links = c->nlinks && bsearch(&c->blobs.v[i].id, c->links, c->nlinks, sizeof(hl_id), cmp_id);
	c->r->objects = c->blobs.n;
	if ((err = load_manifests(c)) != 0)
		return err;
	/* roots: refs, kv values, the young */
	if ((err = c->be.ops->ref_list(c->be.self, NULL, on_ref, c)) != 0)
		return err;
	if (c->o->kv_bound && c->be.ops->kv_bound_each) /* the bucket's kv namespaces bounded here */
		err = c->be.ops->kv_bound_each(c->be.self, c->o->kv_bound, c->o->dry_run, on_kv, c,
		                               &c->r->kv_evicted);
	else
		err = c->be.ops->kv_each(c->be.self, on_kv, c);
	if (err)
		return err;
	for (size_t i = 0; i < c->blobs.n && !err; i++)
		if (c->blobs.v[i].mtime_ms > c->cutoff_ms) {
			c->r->young++;
			err = mark(c, &c->blobs.v[i].id);
		}
	for (size_t i = 0; i < c->large.n && !err; i++)
		if (c->large.v[i].mtime_ms > c->cutoff_ms)
			err = mark(c, &c->large.v[i].id);
	if (!err)
		err = drain(c);
	if (err)
		return err;
	/* the condemned: old and unmarked */
	hl_fleet_victim *v = NULL;
	size_t nv = 0, cap = 0;
	const vec *lists[2] = {&c->blobs, &c->large};
	const uint8_t kinds[2] = {HL_FLEET_OBJECT, HL_FLEET_LARGE};
	for (int k = 0; k < 2 && !err; k++)
		for (size_t i = 0; i < lists[k]->n && !err; i++) {
			const entry *e = &lists[k]->v[i];
			if (e->marked || e->mtime_ms > c->cutoff_ms)
				continue;
			hl_fleet_victim *p = hl_grow(v, nv, &cap, sizeof(*v), 1024);
			if (!p)
				err = ENOMEM;
			else
				(v = p)[nv++] = (hl_fleet_victim){kinds[k], e->id};
		}
	if (!err)
		sort(v, nv, sizeof(*v), hl_fleet_victim_cmp);
	if (err || c->o->dry_run || !nv) {
		if (!err && c->o->dry_run)
			for (size_t i = 0; i < nv; i++)
				if (v[i].kind == HL_FLEET_OBJECT) {
					entry *e = find(&c->blobs, &v[i].id);
					c->r->collected++;
					c->r->collected_bytes += e ? e->size : 0;
				}
		free(v);
		return err;
	}
	/* publish, wait for every live node, honour their keeps, delete */
	uint8_t *list;
	size_t len;
	char key[64];
	snprintf(key, sizeof key, "gc/%s/condemned", c->st.cid);
	if ((err = hl_fleet_list_encode(v, nv, &list, &len)) == 0) {
		err = c->be.ops->key_put(c->be.self, key, list, len, NULL, NULL);
		free(list);
	}
	char cond[96];
	snprintf(cond, sizeof cond, "%s", c->etag);
	if (!err)
		err = write_state(c, HL_FLEET_SWEEP, cond);
	hl_log(HL_LOG_DEBUG, "gc: collection %s condemned %zu (of %zu objects, %zu map entries)", c->st.cid, nv,
	       c->blobs.n, c->large.n);
	if (!err)
		err = wait_acks(c);
	if (!err)
		err = honour_keeps(c);
	size_t keep = 0;
	for (size_t i = 0; i < nv && !err; i++) { /* what the keeps reached leaves the list */
		entry *e = find(v[i].kind == HL_FLEET_LARGE ? &c->large : &c->blobs, &v[i].id);
		if (!e || !e->marked)
			v[keep++] = v[i];
	}
	if (!err)
		err = delete_condemned(c, v, keep);
	free(v);
	return err;
}

int hl_fleet_gc(hl_backend be, const hl_fleet_gc_options *o, hl_gc_report *r)
{
	if (!(be.ops->caps & HL_BE_FLEET) || !o->lease_ms)
		return HL_INVALID;
	memset(r, 0, sizeof(*r));
	uint64_t t0 = hl_now_ns();
	fc c = {.be = be, .o = o, .r = r, .lease_ms = 6u * o->lease_ms};
	hl_fleet_random_id(c.st.cid);
	snprintf(c.st.owner, sizeof c.st.owner, "%s", o->owner ? o->owner : "");
	if (strlen(c.st.owner) != 16)
		hl_fleet_random_id(c.st.owner);
	char old[17];
	int err = acquire(&c, old);
	if (err)
		return err;
	err = collect(&c);
	char cond[96];
	snprintf(cond, sizeof cond, "%s", c.etag);
	int e2 = write_state(&c, HL_FLEET_DONE, cond); /* nodes stop treating the list as condemned */
	if (e2)
		hl_log(HL_LOG_WARN, "gc: collection %s could not be marked done (%s); the next collector takes "
		       "it over once its lease ran out", c.st.cid, hl_strerror(e2));
	else {
		remove_keys(&c, c.st.cid);
		if (*old)
			remove_keys(&c, old);
	}
	free(c.blobs.v);
	free(c.large.v);
	free(c.links);
	free(c.stack);
	r->duration_ns = hl_now_ns() - t0;
	return err;
}
