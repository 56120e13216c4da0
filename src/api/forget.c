/* forget.c — hl_forget: retention by restic's rules over each ref's history. What is not kept is
 * added to the record of forgotten history (dedup/forgotten.h), which the collector reads: kept
 * commits are never rewritten. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "helios.h"
#include "api/history.h"
#include "base/alloc.h"
#include "base/grow.h"
#include "base/idmap.h"
#include "base/log.h"
#include "dedup/commit.h"
#include "dedup/forgotten.h"

#define NS 1000000000ull
#define WHY_MAX 96

typedef struct cnode {
	hl_id id;
	hl_commit *c;
	unsigned weak;     /* HL_FORGOT_* already recorded */
	uint8_t kept;      /* by some ref's policy, or reached from a ref outside the prefix */
	uint8_t guarded;   /* reached from a ref outside the prefix: never forgotten nor cut */
	uint8_t anc;       /* 0 unknown, 1 computing, 2 no kept ancestor, 3 a kept ancestor */
} cnode;

typedef struct graph {
	hl_store *s;
	hl_idmap at;       /* id → index in v */
	cnode *v;
	size_t n, cap;
	uint32_t *list;    /* one ref's visible history, newest first */
	size_t nlist, caplist;
	int guard;         /* the ref being walked lies outside the prefix */
} graph;

typedef struct named {
	char *name;
	hl_id id;
} named;

/* ---- collecting every ref's history ---- */

static int add_commit(const hl_id *id, const hl_commit *c, unsigned flags, unsigned weak, void *ctx)
{
	(void)flags;
	graph *g = ctx;
	uint32_t i;
	if (!hl_idmap_get(&g->at, id, &i)) {
		cnode *v = hl_grow(g->v, g->n, &g->cap, sizeof(*v), 256);
		if (!v)
			return ENOMEM;
		g->v = v;
		i = (uint32_t)g->n;
		size_t ml = strlen(c->message); /* the walk frees its copy: keep times, parents, message */
		hl_commit *copy = hl_malloc(sizeof(*c) + ml + 1);
		if (!copy)
			return ENOMEM;
		memcpy(copy, c, sizeof(*c));
		copy->message = memcpy(copy + 1, c->message, ml + 1);
		copy->author = "";
		copy->nmeta = 0;
		g->v[g->n++] = (cnode){.id = *id, .c = copy, .weak = weak};
		if (hl_idmap_put(&g->at, id, i) < 0)
			return ENOMEM;
	}
	if (g->guard)
		g->v[i].kept = g->v[i].guarded = 1;
	if (weak & HL_FORGOT_TREE)
		return 0; /* forgotten before: stays so, and is not the policy's to count */
	uint32_t *l = hl_grow(g->list, g->nlist, &g->caplist, sizeof(*l), 256);
	if (!l)
		return ENOMEM;
	g->list = l;
	g->list[g->nlist++] = i;
	return 0;
}

typedef struct refs {
	named *v;
	size_t n, cap;
} refs;

static int list_ref(const char *name, const hl_id *id, void *ctx)
{
	refs *r = ctx;
	if (!strcmp(name, HL_FORGOTTEN_REF))
		return 0;
	named *v = hl_grow(r->v, r->n, &r->cap, sizeof(*v), 64);
	if (!v)
		return ENOMEM;
	r->v = v;
	if (!(v[r->n].name = strdup(name)))
		return ENOMEM;
	v[r->n++].id = *id;
	return 0;
}

/* ---- restic's rules ---- */

static int bucket(uint64_t ns, int rule, size_t nr)
{
	time_t t = (time_t)(ns / NS);
	struct tm tm;
	gmtime_r(&t, &tm);
	int y = tm.tm_year + 1900;
	switch (rule) {
	case 0: return (int)nr;                                                /* last */
	case 1: return ((y * 100 + tm.tm_mon + 1) * 100 + tm.tm_mday) * 100 + tm.tm_hour; /* hourly */
	case 2: return (y * 100 + tm.tm_mon + 1) * 100 + tm.tm_mday;           /* daily */
	case 3: { /* ISO week: the week of its Thursday, in the Thursday's year */
		int wday = (tm.tm_wday + 6) % 7; /* Monday 0 */
		time_t thu = t + (time_t)(3 - wday) * 86400;
		struct tm th;
		gmtime_r(&thu, &th);
		return (th.tm_year + 1900) * 100 + th.tm_yday / 7 + 1;
	}
	case 4: return y * 100 + tm.tm_mon + 1;                                /* monthly */
	default: return y;                                                     /* yearly */
	}
}

static const char *const rule_name[6] = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};

/* The newest time minus the policy's within (calendar years, months, days; then hours). */
static uint64_t within_edge(const hl_forget_policy *p, uint64_t latest)
{
	time_t t = (time_t)(latest / NS);
	struct tm tm;
	gmtime_r(&t, &tm);
	tm.tm_year -= p->within_years;
	tm.tm_mon -= p->within_months;
	tm.tm_mday -= p->within_days;
	int64_t edge = (int64_t)timegm(&tm) - (int64_t)p->within_hours * 3600;
	return edge < 0 ? 0 : (uint64_t)edge * NS + latest % NS;
}

static int policy_empty(const hl_forget_policy *p)
{
	return !p->last && !p->hourly && !p->daily && !p->weekly && !p->monthly && !p->yearly &&
	       !p->within_years && !p->within_months && !p->within_days && !p->within_hours;
}

/* Applies p to the ref's visible history g->list (newest first): marks what it keeps. */
static int apply_policy(graph *g, const char *ref, const hl_forget_policy *p, hl_forget_fn fn,
                        void *ctx, hl_forget_report *r)
{
	int count[6] = {p->last, p->hourly, p->daily, p->weekly, p->monthly, p->yearly};
	int last[6] = {-1, -1, -1, -1, -1, -1};
	uint64_t now = (uint64_t)time(NULL) * NS + NS, latest = 0;
	for (size_t k = 0; k < g->nlist; k++) {
		uint64_t t = g->v[g->list[k]].c->time_ns;
		if (t > latest && t < now)
			latest = t;
	}
	int within = p->within_years || p->within_months || p->within_days || p->within_hours;
	uint64_t edge = within ? within_edge(p, latest) : 0;
	for (size_t nr = 0; nr < g->nlist; nr++) {
		cnode *x = &g->v[g->list[nr]];
		char why[WHY_MAX] = "";
		size_t wl = 0;
		if (within && x->c->time_ns > edge)
			wl += (size_t)snprintf(why + wl, sizeof why - wl, "within,");
		for (int b = 0; b < 6; b++) {
			if (count[b] == 0 || count[b] < -1)
				continue;
			int val = bucket(x->c->time_ns, b, nr);
			if (val != last[b] || nr == g->nlist - 1) {
				last[b] = val;
				if (count[b] > 0)
					count[b]--;
				wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s,", rule_name[b]);
			}
		}
		if (nr == 0 && !wl) /* the ref names it: kept whatever the policy says */
			wl += (size_t)snprintf(why, sizeof why, "head,");
		int keep = wl > 0;
		if (wl)
			why[wl - 1] = 0;
		x->kept |= (uint8_t)keep;
		r->commits++;
		r->kept += (uint64_t)keep;
		int err = fn ? fn(ref, &x->id, x->c, keep, why, ctx) : 0;
		if (err)
			return err;
	}
	return 0;
}

/* Whether a kept commit lies among x's ancestors in the graph (iteratively: histories are long). */
static int kept_ancestor(graph *g, uint32_t start, uint32_t **stack, size_t *cap)
{
	size_t n = 0;
	if (!(*stack = hl_grow(*stack, n, cap, sizeof(**stack), 256)))
		return -1;
	(*stack)[n++] = start;
	while (n) {
		cnode *x = &g->v[(*stack)[n - 1]];
		if (x->anc >= 2) {
			n--;
			continue;
		}
		x->anc = 1;
		int pending = 0, found = 0;
		unsigned np = (x->weak & HL_FORGOT_PARENTS) ? 0 : x->c->nparents;
		for (unsigned i = 0; i < np && !found; i++) {
			uint32_t pi;
			if (!hl_idmap_get(&g->at, &x->c->parents[i], &pi))
				continue; /* not stored: history not here */
			cnode *p = &g->v[pi];
			if (p->kept || p->anc == 3)
				found = 1;
			else if (p->anc == 0) {
				uint32_t *s = hl_grow(*stack, n, cap, sizeof(**stack), 256);
				if (!s)
					return -1;
				*stack = s;
				s[n++] = pi;
				pending = 1;
			}
		}
		if (found || !pending) {
			x->anc = found ? 3 : 2;
			n--;
		}
	}
	return g->v[start].anc == 3;
}

/* ---- one pass: decide, then replace the record by compare-and-swap ---- */

static void graph_free(graph *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i].c);
	free(g->v);
	free(g->list);
	hl_idmap_free(&g->at);
}

static int forget_once(hl_store *s, const char *prefix, const hl_forget_policy *p, int dry_run,
                       hl_forget_fn fn, void *ctx, hl_forget_report *r)
{
	memset(r, 0, sizeof(*r));
	hl_forgotten f;
	hl_id at;
	static const hl_id none;
	graph g = {.s = s};
	refs rl = {0};
	uint32_t *stack = NULL;
	size_t stack_cap = 0;
	int err = hl_api_forgotten_load(s, &f, &at);
	if (!err)
		err = hl_ref_list(s, "", list_ref, &rl);
	size_t plen = prefix ? strlen(prefix) : 0;
	/* refs outside the prefix first: everything they reach is kept */
	for (int pass = 0; pass < 2 && !err; pass++) {
		for (size_t i = 0; i < rl.n && !err; i++) {
			int inside = !strncmp(rl.v[i].name, prefix ? prefix : "", plen);
			if (inside != pass)
				continue;
			hl_commit *head;
			if ((err = hl_commit_get(s, &rl.v[i].id, &head)) != 0) {
				err = err == HL_INVALID || err == HL_NOTFOUND ? 0 : err; /* names no commit */
				continue;
			}
			hl_commit_free(head);
			g.guard = !inside;
			g.nlist = 0;
			err = hl_api_history(s, &rl.v[i].id, &f, 1, 0, 0, add_commit, &g);
			if (!err && inside) {
				r->refs++;
				err = apply_policy(&g, rl.v[i].name, p, fn, ctx, r);
			}
		}
	}
	/* what no ref keeps is forgotten; a kept commit with no kept ancestor ends its history */
	for (size_t i = 0; i < g.n && !err; i++) {
		cnode *x = &g.v[i];
		unsigned add = 0;
		if (!x->kept && !(x->weak & HL_FORGOT_TREE))
			add = HL_FORGOT_TREE, r->forgotten++;
		if (x->kept && !x->guarded && !(x->weak & HL_FORGOT_PARENTS) && x->c->nparents) {
			int k = kept_ancestor(&g, (uint32_t)i, &stack, &stack_cap);
			if (k < 0)
				err = ENOMEM;
			else if (!k)
				add |= HL_FORGOT_PARENTS, r->cut++;
		}
		if (add && !err)
			err = hl_forgotten_add(&f, &x->id, add);
	}
	if (!err && !dry_run && (r->forgotten || r->cut)) {
		/* entries whose commit is gone name nothing any more; asked by stat, which (unlike has)
		 * does not rely on the object: on a bucket that would keep what was just forgotten */
		hl_forgotten keep = {0};
		for (size_t i = 0; i < f.n && !err; i++) {
			hl_stat st;
			int has = hl_stat_object(s, &f.v[i].id, &st);
			if (has == 0)
				err = hl_forgotten_add(&keep, &f.v[i].id, f.v[i].flags);
			else if (has != HL_NOTFOUND)
				err = has;
		}
		size_t cap = hl_forgotten_size(&keep), len;
		uint8_t *buf = err ? NULL : hl_malloc(cap);
		hl_id rec;
		if (!err && !buf)
			err = ENOMEM;
		if (!err && (err = hl_forgotten_encode(&keep, buf, cap, &len)) == 0 &&
		    (err = hl_put(s, buf, len, &rec, NULL)) == 0)
			err = hl_ref_cas(s, HL_FORGOTTEN_REF, memcmp(&at, &none, sizeof(at)) ? &at : NULL, &rec);
		free(buf);
		hl_forgotten_free(&keep);
	}
	for (size_t i = 0; i < rl.n; i++)
		free(rl.v[i].name);
	free(rl.v);
	free(stack);
	graph_free(&g);
	hl_forgotten_free(&f);
	return err;
}

int hl_forget(hl_store *s, const char *prefix, const hl_forget_policy *p, int dry_run,
              hl_forget_fn fn, void *ctx, hl_forget_report *out)
{
	hl_forget_report r;
	if (!s || !p || policy_empty(p))
		return HL_INVALID;
	const int *rules = &p->last;
	for (int i = 0; i < 6; i++)
		if (rules[i] < -1)
			return HL_INVALID;
	if (p->within_years < 0 || p->within_months < 0 || p->within_days < 0 || p->within_hours < 0)
		return HL_INVALID;
	int err;
	for (int attempt = 0; attempt < 10; attempt++) /* another forget replaced the record meanwhile */
		if ((err = forget_once(s, prefix, p, dry_run, fn, ctx, out ? out : &r)) != HL_CONFLICT)
			break;
	return err;
}
