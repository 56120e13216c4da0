/* fleet.c — this node's side of a shared backend's collection protocol (see fleet.h): the
 * protocol's formats (state, condemned lists, claim keys), the node's view of the collection and
 * its heartbeat, what it relied on lately, its claims, and the guarded tier and backend. One
 * file past 700 lines on purpose: every part reads or changes the view under one lock (mu), and
 * the invariant that a rely and a sweep's install never miss each other is argued here in one
 * place (docs/DESIGN.md, "Collecting a shared bucket"). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/dec.h"
#include "base/endian.h"
#include "base/grow.h"
#include "base/log.h"
#include "tier/fleet.h"
#include "base/alloc.h"

#define FILTER_SLOTS 4096

/* ---- formats ---- */

void hl_fleet_random_id(char out[17])
{
	uint8_t r[8];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		uint64_t t = hl_now_ns() ^ (uint64_t)(uintptr_t)out;
		memcpy(r, &t, sizeof r);
	}
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static const char *const phase_names[] = {NULL, "mark", "sweep", "done"};

int hl_fleet_state_format(const hl_fleet_state *st, char *out, size_t cap)
{
	return snprintf(out, cap, "helios-gc 1\ncid %s\nphase %s\nlease %llu\nowner %s\n", st->cid,
	                phase_names[st->phase], (unsigned long long)st->lease_ms, st->owner);
}

/* "<word> <value>\n" at *p: the value's bounds. */
static int line_value(const uint8_t **p, const uint8_t *end, const char *word, const uint8_t **v, size_t *vl)
{
	size_t wl = strlen(word);
	if ((size_t)(end - *p) < wl + 2 || memcmp(*p, word, wl) || (*p)[wl] != ' ')
		return HL_CORRUPT;
	const uint8_t *a = *p + wl + 1, *nl = memchr(a, '\n', (size_t)(end - a));
	if (!nl || nl == a)
		return HL_CORRUPT;
	*v = a;
	*vl = (size_t)(nl - a);
	*p = nl + 1;
	return 0;
}

static int hex16(const uint8_t *v, size_t vl, char out[17])
{
	if (vl != 16)
		return HL_CORRUPT;
	for (size_t i = 0; i < 16; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return HL_CORRUPT;
	memcpy(out, v, 16);
	out[16] = 0;
	return 0;
}

int hl_fleet_state_parse(const uint8_t *b, size_t len, hl_fleet_state *out)
{
	const uint8_t *p = b, *end = b + len, *v;
	size_t vl;
	memset(out, 0, sizeof(*out));
	if (!b || len < 12 || memcmp(b, "helios-gc 1\n", 12))
		return HL_CORRUPT;
	p += 12;
	if (line_value(&p, end, "cid", &v, &vl) || hex16(v, vl, out->cid) ||
	    line_value(&p, end, "phase", &v, &vl))
		return HL_CORRUPT;
	for (int i = HL_FLEET_MARK; i <= HL_FLEET_DONE; i++)
		if (vl == strlen(phase_names[i]) && !memcmp(v, phase_names[i], vl))
			out->phase = i;
	if (!out->phase || line_value(&p, end, "lease", &v, &vl) || vl > 10 || (v[0] == '0' && vl > 1) ||
	    hl_dec_u64((const char *)v, vl, &out->lease_ms))
		return HL_CORRUPT;
	if (line_value(&p, end, "owner", &v, &vl) || hex16(v, vl, out->owner) || p != end)
		return HL_CORRUPT;
	return 0;
}

int hl_fleet_victim_cmp(const void *a, const void *b)
{
	const hl_fleet_victim *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->id.b, y->id.b, HL_ID_LEN);
}

#define LIST_HEAD 16
#define LIST_ENTRY (1 + HL_ID_LEN)

int hl_fleet_list_encode(const hl_fleet_victim *v, size_t n, uint8_t **out, size_t *len)
{
	*len = LIST_HEAD + n * LIST_ENTRY;
	uint8_t *p = hl_malloc(*len);
	if (!(*out = p))
		return ENOMEM;
	memcpy(p, "HLGD\1\0\0\0", 8);
	hl_put_le64(p + 8, n);
	for (size_t i = 0; i < n; i++) {
		p[LIST_HEAD + i * LIST_ENTRY] = v[i].kind;
		memcpy(p + LIST_HEAD + i * LIST_ENTRY + 1, v[i].id.b, HL_ID_LEN);
	}
	return 0;
}

int hl_fleet_list_parse(const uint8_t *b, size_t len, hl_fleet_victim **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!b || len < LIST_HEAD || memcmp(b, "HLGD\1\0\0\0", 8))
		return HL_CORRUPT;
	uint64_t count = hl_le64(b + 8);
	if (count != (len - LIST_HEAD) / LIST_ENTRY || (len - LIST_HEAD) % LIST_ENTRY)
		return HL_CORRUPT;
	hl_fleet_victim *v = hl_malloc((count ? count : 1) * sizeof(*v));
	if (!v)
		return ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = b + LIST_HEAD + i * LIST_ENTRY;
		v[i].kind = e[0];
		memcpy(v[i].id.b, e + 1, HL_ID_LEN);
		if ((v[i].kind != HL_FLEET_OBJECT && v[i].kind != HL_FLEET_LARGE) ||
		    (i && hl_fleet_victim_cmp(&v[i - 1], &v[i]) >= 0)) {
			free(v);
			return HL_CORRUPT;
		}
	}
	*out = v;
	*n = count;
	return 0;
}

void hl_fleet_claim_key(const char *cid, uint8_t kind, const hl_id *id, char out[128])
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	snprintf(out, 128, "gc/%s/claims/%c%s", cid, kind, hex);
}

/* ---- the node ---- */

typedef struct rely {
	hl_fleet_victim v;
	uint64_t t_ns;
} rely;

struct hl_fleet {
	hl_backend inner;
	hl_tier objects;
	hl_fleet_config cfg;
	char node[17];
	hl_backend_ops ops;
	pthread_mutex_t mu;      /* the view and the relies */
	pthread_mutex_t poll_mu; /* one poll at a time */
	pthread_cond_t cv;
	int stop;
	pthread_t th;
	/* the view */
	int phase;               /* 0: no collection */
	char cid[17], etag[96];
	uint64_t seen_ns;        /* when this state version was first seen */
	uint64_t state_lease_ms;
	uint64_t polled_ns;      /* start of the last complete poll (0: never) */
	uint64_t beat_ns;
	char acked[17];          /* the sweep this node acknowledged */
	hl_fleet_victim *d;      /* a sweep's condemned list, and which of it this node keeps */
	uint8_t *kept;
	size_t nd;
	/* what this node relied on lately: a ring, with a direct-mapped filter against repeats */
	rely *ring;
	size_t ring_n, ring_cap, ring_next;
	rely filter[FILTER_SLOTS];
};

static uint64_t lease_ns(const hl_fleet *f)
{
	return (uint64_t)f->cfg.lease_ms * 1000000u;
}

/* The index of (kind, id) in the condemned list when this node does not keep it, else -1 (mu). */
static long condemned(const hl_fleet *f, uint8_t kind, const hl_id *id)
{
	if (f->phase != HL_FLEET_SWEEP || !f->nd)
		return -1;
	hl_fleet_victim k = {kind, *id};
	const hl_fleet_victim *p = bsearch(&k, f->d, f->nd, sizeof(*f->d), hl_fleet_victim_cmp);
	return p && f->kept[p - f->d] != 1 ? (long)(p - f->d) : -1;
}

/* How far back the relies a sweep keeps reach: remember() skips a repeat seen within a quarter of
 * the window, so an entry may be that much older than the last rely it stands for. */
static uint64_t rely_window_ns(const hl_fleet *f)
{
	return f->cfg.remember_s * 1250000000u;
}

/* Rotates the ring so its oldest entry (ring_next) comes first. */
static void ring_straighten(hl_fleet *f)
{
	size_t k = f->ring_next, n = f->ring_n;
	for (size_t done = 0, start = 0; done < n; start++) { /* cycle leader rotation, in place */
		rely t = f->ring[start];
		size_t cur = start;
		for (;;) {
			size_t from = (cur + k) % n;
			done++;
			if (from == start) {
				f->ring[cur] = t;
				break;
			}
			f->ring[cur] = f->ring[from];
			cur = from;
		}
	}
	f->ring_next = 0;
}

/* (mu) Remembers a rely for the grace period. The ring's oldest entry is replaced only once it is
 * older than the window: when every entry is still inside it, the ring grows (logged once). ENOMEM
 * when the rely cannot be remembered: the caller must not rely then. */
static int remember(hl_fleet *f, uint8_t kind, const hl_id *id)
{
	uint64_t now = hl_now_ns();
	uint64_t h;
	memcpy(&h, id->b, sizeof h);
	rely *slot = &f->filter[(h ^ kind) % FILTER_SLOTS];
	if (slot->t_ns && slot->v.kind == kind && hl_id_equal(&slot->v.id, id) &&
	    now - slot->t_ns < f->cfg.remember_s * 250000000u) /* seen within a quarter of the window */
		return 0;
	rely r = {{kind, *id}, now};
	if (f->ring_n >= f->cfg.remember_max && now - f->ring[f->ring_next].t_ns > rely_window_ns(f)) {
		f->ring[f->ring_next] = r; /* full, and the oldest is out of the window: it goes */
		f->ring_next = (f->ring_next + 1) % f->ring_n;
		*slot = r;
		return 0;
	}
	if (f->ring_next)
		ring_straighten(f); /* appending keeps the ring in time order from ring_next on */
	rely *p = hl_grow(f->ring, f->ring_n, &f->ring_cap, sizeof(*f->ring), 1024);
	if (!p)
		return ENOMEM;
	f->ring = p;
	f->ring[f->ring_n++] = r;
	*slot = r;
	if (f->ring_n == f->cfg.remember_max + 1)
		hl_log(HL_LOG_WARN, "fleet: more than %zu objects relied on within the grace period; "
		       "remembering them all (the ring grows)", f->cfg.remember_max);
	return 0;
}

static void clear_sweep(hl_fleet *f)
{
	free(f->d);
	free(f->kept);
	f->d = NULL;
	f->kept = NULL;
	f->nd = 0;
}

static int claim(hl_fleet *f, const char *cid, uint8_t kind, const hl_id *id, int *won)
{
	char key[128], body[32];
	hl_fleet_claim_key(cid, kind, id, key);
	int len = snprintf(body, sizeof body, "keep %s\n", f->node);
	int err = f->inner.ops->key_put(f->inner.self, key, body, (size_t)len, "*", NULL);
	if (err == HL_CONFLICT) { /* claimed before: by a node (keep) or the collector (delete) */
		hl_buf *b;
		if ((err = f->inner.ops->key_get(f->inner.self, key, &b, NULL)) == HL_NOTFOUND) {
			*won = 0; /* the collection ended and removed its claims: the caller looks again */
			return 0;
		}
		if (err)
			return err;
		*won = hl_buf_len(b) >= 5 && !memcmp(hl_buf_data(b), "keep ", 5);
		hl_buf_unref(b);
		return 0;
	}
	*won = !err;
	return err;
}

/* A sweep was published: fetch its list, keep what this node relied on, acknowledge. */
static int join_sweep(hl_fleet *f, const char *cid)
{
	uint64_t t0 = hl_now_ns();
	char key[64];
	hl_buf *b;
	snprintf(key, sizeof key, "gc/%s/condemned", cid);
	int err = f->inner.ops->key_get(f->inner.self, key, &b, NULL);
	if (err)
		return err;
	hl_fleet_victim *d;
	size_t nd;
	err = hl_fleet_list_parse(hl_buf_data(b), hl_buf_len(b), &d, &nd);
	hl_buf_unref(b);
	uint8_t *kept = err ? NULL : hl_calloc(nd ? nd : 1, 1);
	if (!err && !kept) {
		free(d);
		err = ENOMEM;
	}
	if (err)
		return err;
	/* install the list and take what was relied on, in one step: a rely after this sees it */
	pthread_mutex_lock(&f->mu);
	clear_sweep(f);
	f->d = d, f->kept = kept, f->nd = nd;
	snprintf(f->cid, sizeof f->cid, "%s", cid);
	f->phase = HL_FLEET_SWEEP;
	uint64_t now = hl_now_ns(), window = rely_window_ns(f);
	size_t *mine = NULL, nmine = 0, cap = 0;
	for (size_t i = 0; i < f->ring_n; i++) {
		if (now - f->ring[i].t_ns > window)
			continue;
		const hl_fleet_victim *p = bsearch(&f->ring[i].v, d, nd, sizeof(*d), hl_fleet_victim_cmp);
		if (!p || kept[p - d])
			continue;
		size_t *m = hl_grow(mine, nmine, &cap, sizeof(*mine), 64);
		if (!m) {
			err = ENOMEM;
			break;
		}
		mine = m;
		mine[nmine++] = (size_t)(p - d);
		kept[p - d] = 2; /* being claimed: still condemned for new relies until the claim is won */
	}
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < nmine && !err; i++) {
		int won = 0;
		err = claim(f, cid, d[mine[i]].kind, &d[mine[i]].id, &won);
		pthread_mutex_lock(&f->mu);
		if (f->d == d)
			kept[mine[i]] = !err && won;
		pthread_mutex_unlock(&f->mu);
		if (!err && !won) {
			char hex[HL_ID_HEX_LEN + 1];
			hl_id_format(&d[mine[i]].id, hex);
			hl_log(HL_LOG_ERROR, "fleet: %s was relied on by this node but collection %s claimed it "
			       "first (this node's view was late)", hex, cid);
		}
	}
	free(mine);
	if (!err) {
		snprintf(key, sizeof key, "gc/%s/acks/%s", cid, f->node);
		err = f->inner.ops->key_put(f->inner.self, key, "", 0, NULL, NULL);
	}
	if (!err)
		snprintf(f->acked, sizeof f->acked, "%s", cid);
	hl_log(HL_LOG_DEBUG, "fleet: node %s %s collection %s (%zu of %zu kept) in %llu ms", f->node,
	       err ? "could not acknowledge" : "acknowledged", cid, nmine, nd,
	       (unsigned long long)((hl_now_ns() - t0) / 1000000u));
	return err;
}

/* Looks at the bucket's collection state (and beats the heart); the view is fresh on 0. */
static int poll_now(hl_fleet *f)
{
	uint64_t start = hl_now_ns();
	pthread_mutex_lock(&f->poll_mu);
	pthread_mutex_lock(&f->mu);
	int fresh = f->polled_ns && f->polled_ns >= start; /* another poll began after us and ended */
	int beat = !f->beat_ns || start - f->beat_ns > lease_ns(f) / 2;
	pthread_mutex_unlock(&f->mu);
	int err = 0;
	if (fresh)
		goto out;
	char key[64];
	if (beat) { /* a body of its own each time: its LastModified must move */
		char body[48];
		int blen = snprintf(body, sizeof body, "%llu\n", (unsigned long long)start);
		snprintf(key, sizeof key, "%s%s", HL_FLEET_NODES, f->node);
		if ((err = f->inner.ops->key_put(f->inner.self, key, body, (size_t)blen, NULL, NULL)) != 0)
			goto out;
		f->beat_ns = start;
	}
	hl_buf *b = NULL;
	char etag[96] = "";
	hl_fleet_state st = {0};
	err = f->inner.ops->key_get(f->inner.self, HL_FLEET_STATE, &b, etag);
	if (err == HL_NOTFOUND)
		err = 0;
	else if (!err && hl_fleet_state_parse(hl_buf_data(b), hl_buf_len(b), &st))
		err = HL_CORRUPT;
	hl_buf_unref(b);
	if (err)
		goto out;
	if (st.phase == HL_FLEET_SWEEP && strcmp(f->acked, st.cid))
		err = join_sweep(f, st.cid);
	if (err)
		goto out;
	pthread_mutex_lock(&f->mu);
	if (strcmp(etag, f->etag)) {
		snprintf(f->etag, sizeof f->etag, "%s", etag);
		f->seen_ns = hl_now_ns();
	}
	f->state_lease_ms = st.lease_ms;
	if (st.phase != HL_FLEET_SWEEP || strcmp(f->cid, st.cid))
		clear_sweep(f);
	f->phase = st.phase == HL_FLEET_DONE ? 0 : st.phase;
	snprintf(f->cid, sizeof f->cid, "%s", st.cid);
	f->polled_ns = start;
	pthread_mutex_unlock(&f->mu);
out:
	pthread_mutex_unlock(&f->poll_mu);
	return err;
}

/* 0 when this node's view is recent enough to rely on anything (it looks again when not). */
static int ensure_fresh(hl_fleet *f)
{
	pthread_mutex_lock(&f->mu);
	int ok = f->polled_ns && hl_now_ns() - f->polled_ns < lease_ns(f);
	pthread_mutex_unlock(&f->mu);
	if (ok)
		return 0;
	int err = poll_now(f);
	if (err)
		hl_log(HL_LOG_WARN, "fleet: cannot read the collection state (%s); nothing is relied on until then",
		       hl_strerror(err));
	return err ? HL_UNAVAILABLE : 0;
}

static int present(hl_fleet *f, uint8_t kind, const hl_id *id)
{
	if (kind == HL_FLEET_LARGE) {
		hl_id m;
		uint64_t size;
		return f->inner.ops->large_get(f->inner.self, id, &m, &size);
	}
	return f->inner.ops->obj.has(f->inner.self, id);
}

/* The collector claimed (kind, id) for deletion: waits until it is gone, or the collection ended
 * or its collector is past its lease (then it stays). */
static int wait_gone(hl_fleet *f, uint8_t kind, const hl_id *id)
{
	for (unsigned sleep_ms = 20;; sleep_ms = sleep_ms < 500 ? sleep_ms * 2 : 500) {
		int err = present(f, kind, id);
		if (err == HL_NOTFOUND)
			return 0;
		if (err)
			return err;
		if ((err = poll_now(f)) != 0)
			return err;
		pthread_mutex_lock(&f->mu);
		int over = f->phase != HL_FLEET_SWEEP ||
		           hl_now_ns() - f->seen_ns > f->state_lease_ms * 1000000u + lease_ns(f);
		pthread_mutex_unlock(&f->mu);
		if (over)
			return 0;
		hl_sleep_ms(sleep_ms);
	}
}

/* Before relying on (kind, id), or after finding it present: remembered (remember), and when a
 * sweep condemned it, claimed for keeping; *gone = 1 when the collector claimed it first and it
 * is gone now (the caller stores it anew). */
static int settle(hl_fleet *f, uint8_t kind, const hl_id *id, int remember_it, int *gone)
{
	*gone = 0;
	pthread_mutex_lock(&f->mu);
	int err = remember_it ? remember(f, kind, id) : 0;
	if (err) {
		pthread_mutex_unlock(&f->mu);
		return err;
	}
	long i = condemned(f, kind, id);
	char cid[17];
	snprintf(cid, sizeof cid, "%s", f->cid);
	pthread_mutex_unlock(&f->mu);
	if (i < 0)
		return 0;
	int won = 0;
	err = claim(f, cid, kind, id, &won);
	if (!err && won) {
		pthread_mutex_lock(&f->mu);
		if (!strcmp(cid, f->cid) && (size_t)i < f->nd && hl_id_equal(&f->d[i].id, id))
			f->kept[i] = 1;
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	if (!err && (err = wait_gone(f, kind, id)) == 0)
		*gone = 1;
	return err;
}

/* ---- the guarded tier (for the coordinator) ---- */

static int t_get(void *self, const hl_id *id, hl_buf **out)
{
	hl_fleet *f = self;
	return f->objects.ops->get(f->objects.self, id, out);
}

static int t_has(void *self, const hl_id *id)
{
	hl_fleet *f = self;
	int err = ensure_fresh(f);
	if (err)
		return err;
	pthread_mutex_lock(&f->mu);
	err = remember(f, HL_FLEET_OBJECT, id); /* first: a sweep installed after this keeps it */
	long i = err ? -1 : condemned(f, HL_FLEET_OBJECT, id);
	pthread_mutex_unlock(&f->mu);
	if (err)
		return err;
	if (i >= 0)
		return HL_NOTFOUND; /* being collected: the writer stores it again */
	return f->objects.ops->has(f->objects.self, id);
}

static int t_put_batch(void *self, hl_put_item *items, size_t n, int ids_trusted)
{
	hl_fleet *f = self;
	int err = ensure_fresh(f), gone;
	for (size_t i = 0; i < n && !err && ids_trusted; i++) /* condemned ones claimed (ids known) */
		err = settle(f, HL_FLEET_OBJECT, &items[i].id, 0, &gone);
	if (!err)
		err = f->objects.ops->put_batch(f->objects.self, items, n, ids_trusted);
	for (size_t i = 0; i < n && !err; i++) {
		if (items[i].created)
			continue;
		/* found present: relied on; a sweep that came meanwhile may have condemned it */
		if ((err = settle(f, HL_FLEET_OBJECT, &items[i].id, 1, &gone)) == 0 && gone)
			err = f->objects.ops->put_batch(f->objects.self, &items[i], 1, 1);
	}
	return err;
}

/* ---- the guarded backend: names forwarded, the large-blob map guarded ---- */

#define INNER(f) ((hl_fleet *)(f))->inner
static int b_get(void *f, const hl_id *id, hl_buf **out) { return INNER(f).ops->obj.get(INNER(f).self, id, out); }
static int b_has(void *f, const hl_id *id) { return INNER(f).ops->obj.has(INNER(f).self, id); }
static int b_put_batch(void *f, hl_put_item *it, size_t n, int trusted)
{
	return INNER(f).ops->obj.put_batch(INNER(f).self, it, n, trusted);
}
static int b_stat(void *f, const hl_id *id, hl_stat *out) { return INNER(f).ops->stat(INNER(f).self, id, out); }
static int b_list(void *f, hl_iter_fn fn, void *ctx) { return INNER(f).ops->list(INNER(f).self, fn, ctx); }
static int b_ref_get(void *f, const char *name, hl_id *out) { return INNER(f).ops->ref_get(INNER(f).self, name, out); }
static int b_ref_set(void *f, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	return INNER(f).ops->ref_set(INNER(f).self, name, expect, target, force);
}
static int b_ref_list(void *f, const char *prefix, hl_ref_fn fn, void *ctx)
{
	return INNER(f).ops->ref_list(INNER(f).self, prefix, fn, ctx);
}
static int b_kv_get(void *f, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	return INNER(f).ops->kv_get(INNER(f).self, ns, key, klen, id, size);
}
static int b_kv_set(void *f, const char *ns, const void *key, size_t klen, const hl_id *id, uint64_t size,
                    uint64_t bound, uint64_t *evicted)
{
	return INNER(f).ops->kv_set(INNER(f).self, ns, key, klen, id, size, bound, evicted);
}
static int b_kv_delete(void *f, const char *ns, const void *key, size_t klen)
{
	return INNER(f).ops->kv_delete(INNER(f).self, ns, key, klen);
}
static int b_kv_usage(void *f, const char *ns, uint64_t *bytes, uint64_t *keys)
{
	return INNER(f).ops->kv_usage(INNER(f).self, ns, bytes, keys);
}
static int b_kv_each(void *f, hl_kv_id_fn fn, void *ctx) { return INNER(f).ops->kv_each(INNER(f).self, fn, ctx); }
static int b_kv_bound_each(void *f, uint64_t bound, int dry_run, hl_kv_id_fn fn, void *ctx, uint64_t *evicted)
{
	return INNER(f).ops->kv_bound_each(INNER(f).self, bound, dry_run, fn, ctx, evicted);
}
static int b_large_get(void *f, const hl_id *id, hl_id *m, uint64_t *size)
{
	return INNER(f).ops->large_get(INNER(f).self, id, m, size);
}
static int b_large_each(void *f, hl_large_fn fn, void *ctx) { return INNER(f).ops->large_each(INNER(f).self, fn, ctx); }
static int b_key_get(void *f, const char *key, hl_buf **body, char etag[96])
{
	return INNER(f).ops->key_get(INNER(f).self, key, body, etag);
}
static int b_key_put(void *f, const char *key, const void *body, size_t len, const char *cond, char etag[96])
{
	return INNER(f).ops->key_put(INNER(f).self, key, body, len, cond, etag);
}
static int b_key_delete(void *f, const char *key) { return INNER(f).ops->key_delete(INNER(f).self, key); }
static int b_key_list(void *f, const char *under, hl_key_fn fn, void *ctx)
{
	return INNER(f).ops->key_list(INNER(f).self, under, fn, ctx);
}
static int b_list_aged(void *f, int what, hl_aged_fn fn, void *ctx)
{
	return INNER(f).ops->list_aged(INNER(f).self, what, fn, ctx);
}
static int b_remove(void *f, int what, const hl_id *id) { return INNER(f).ops->remove(INNER(f).self, what, id); }
static int b_rewrite(void *f, const hl_id *id, const void *data, size_t len)
{
	return INNER(f).ops->rewrite(INNER(f).self, id, data, len);
}
static void b_remote_stats(void *f, hl_http_stats *out) { INNER(f).ops->remote_stats(INNER(f).self, out); }

static int b_large_has(void *self, const hl_id *id)
{
	hl_fleet *f = self;
	int err = ensure_fresh(f);
	if (err)
		return err;
	pthread_mutex_lock(&f->mu);
	err = remember(f, HL_FLEET_LARGE, id);
	long i = err ? -1 : condemned(f, HL_FLEET_LARGE, id);
	pthread_mutex_unlock(&f->mu);
	if (err)
		return err;
	return i >= 0 ? HL_NOTFOUND : f->inner.ops->large_has(f->inner.self, id);
}

static int b_large_put_n(void *self, const hl_large_map *m, size_t n)
{
	hl_fleet *f = self;
	int err = ensure_fresh(f), gone;
	for (size_t i = 0; i < n && !err; i++)
		err = settle(f, HL_FLEET_LARGE, &m[i].id, 0, &gone);
	if (!err)
		err = f->inner.ops->large_put_n(f->inner.self, m, n);
	for (size_t i = 0; i < n && !err; i++) /* an entry there already is relied on */
		if ((err = settle(f, HL_FLEET_LARGE, &m[i].id, 1, &gone)) == 0 && gone)
			err = f->inner.ops->large_put_n(f->inner.self, &m[i], 1);
	return err;
}

static void *watch(void *arg)
{
	hl_fleet *f = arg;
	pthread_setname_np(pthread_self(), "hl-fleet");
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		pthread_mutex_unlock(&f->mu);
		int err = poll_now(f); /* a failure leaves the view to age: relies then wait for a poll */
		if (err)
			hl_log(HL_LOG_DEBUG, "fleet: node %s cannot read the collection state: %s", f->node, hl_strerror(err));
		struct timespec ts = hl_deadline_after(lease_ns(f) / 4);
		pthread_mutex_lock(&f->mu);
		if (!f->stop)
			pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int hl_fleet_new(hl_backend inner, hl_tier objects, const hl_fleet_config *cfg, hl_fleet **out)
{
	if (!(inner.ops->caps & HL_BE_FLEET))
		return HL_INVALID;
	hl_fleet *f = hl_calloc(1, sizeof(*f));
	if (!f)
		return ENOMEM;
	f->inner = inner;
	f->objects = objects;
	f->cfg = *cfg;
	if (!f->cfg.lease_ms)
		f->cfg.lease_ms = 10000;
	if (!f->cfg.remember_max)
		f->cfg.remember_max = 1u << 20;
	hl_fleet_random_id(f->node);
	hl_log(HL_LOG_DEBUG, "fleet: node %s", f->node);
	const hl_backend_ops *o = inner.ops;
	f->ops = (hl_backend_ops){
		.obj = {.name = o->obj.name, .get = b_get, .has = b_has, .put_batch = b_put_batch},
		.kind = o->kind, .caps = o->caps,
		.stat = b_stat, .list = o->list ? b_list : NULL,
		.ref_get = b_ref_get, .ref_set = b_ref_set, .ref_list = b_ref_list,
		.kv_get = b_kv_get, .kv_set = b_kv_set, .kv_delete = b_kv_delete,
		.kv_usage = o->kv_usage ? b_kv_usage : NULL, .kv_each = b_kv_each,
		.kv_bound_each = o->kv_bound_each ? b_kv_bound_each : NULL,
		.large_get = b_large_get, .large_has = b_large_has, .large_put_n = b_large_put_n,
		.large_each = b_large_each,
		.key_get = b_key_get, .key_put = b_key_put, .key_delete = b_key_delete, .key_list = b_key_list,
		.list_aged = b_list_aged, .remove = b_remove,
		.rewrite = o->rewrite ? b_rewrite : NULL, .remote_stats = o->remote_stats ? b_remote_stats : NULL,
	};
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->poll_mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (pthread_create(&f->th, NULL, watch, f)) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->poll_mu);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return EAGAIN;
	}
	*out = f;
	return 0;
}

static const hl_tier_ops guarded_ops = {
	.name = "fleet", .get = t_get, .has = t_has, .put_batch = t_put_batch,
};

hl_tier hl_fleet_tier(hl_fleet *f)
{
	return (hl_tier){&guarded_ops, f};
}

hl_backend hl_fleet_backend(hl_fleet *f)
{
	return (hl_backend){&f->ops, f};
}

const char *hl_fleet_node(hl_fleet *f)
{
	return f->node;
}

void hl_fleet_free(hl_fleet *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	char key[64];
	snprintf(key, sizeof key, "%s%s", HL_FLEET_NODES, f->node);
	f->inner.ops->key_delete(f->inner.self, key); /* a node that leaves is not waited for */
	clear_sweep(f);
	free(f->ring);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->poll_mu);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
