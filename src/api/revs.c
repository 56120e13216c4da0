/* revs.c — hl_rev_parse: revisions (a ref, an id or a unique prefix of one, then ~N, ^, ^N and
 * @{TIME}) resolved to a commit and its root tree. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "helios.h"
#include "api/history.h"
#include "base/log.h"
#include "dedup/forgotten.h"

#define PREFIX_MIN 4

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* ---- unique prefixes: searched among the commits of every ref's history ---- */

typedef struct prefix_search {
	const char *hex;
	size_t len;
	hl_id found;
	int matches;
} prefix_search;

static int match_commit(const hl_id *id, const hl_commit *c, unsigned flags, unsigned weak, void *ctx)
{
	(void)c, (void)flags, (void)weak;
	prefix_search *p = ctx;
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	if (!memcmp(hex, p->hex, p->len) && (!p->matches || !hl_id_equal(&p->found, id))) {
		p->found = *id;
		p->matches++;
	}
	return 0;
}

typedef struct ref_walk {
	hl_store *s;
	const hl_forgotten *forgotten;
	prefix_search *p;
} ref_walk;

static int search_ref(const char *name, const hl_id *id, void *ctx)
{
	(void)name;
	ref_walk *r = ctx;
	hl_commit *c;
	int err = hl_commit_get(r->s, id, &c);
	if (err)
		return err == HL_INVALID || err == HL_NOTFOUND ? 0 : err; /* a ref naming no commit */
	hl_commit_free(c);
	return hl_api_history(r->s, id, r->forgotten, 1, 0, 0, match_commit, r->p);
}

typedef struct store_walk {
	hl_store *s;
	prefix_search *p;
} store_walk;

/* Objects come in id order: those with the prefix are together, and the walk ends past them. */
static int search_object(const hl_id *id, const hl_stat *st, void *ctx)
{
	store_walk *w = ctx;
	char hex[HL_ID_HEX_LEN + 1];
	(void)st;
	hl_id_format(id, hex);
	int c = memcmp(hex, w->p->hex, w->p->len);
	if (c > 0)
		return 1;
	hl_commit *cm;
	if (c == 0 && hl_commit_get(w->s, id, &cm) == 0) {
		hl_commit_free(cm);
		return match_commit(id, NULL, 0, 0, w->p);
	}
	return 0;
}

/* Among the commits of every ref's history; when none there has it, among every stored commit
 * (a commit pulled or made without a ref). */
static int find_prefix(hl_store *s, const hl_forgotten *forgotten, const char *hex, size_t len,
                       hl_id *out)
{
	prefix_search p = {hex, len, {{0}}, 0};
	ref_walk r = {s, forgotten, &p};
	int err = hl_ref_list(s, "", search_ref, &r);
	if (!err && !p.matches) {
		store_walk w = {s, &p};
		err = hl_iterate(s, search_object, &w);
		err = err == 1 || err == HL_INVALID ? 0 : err; /* past the prefix; a backend not listed */
	}
	if (err)
		return err;
	if (p.matches > 1)
		return HL_AMBIGUOUS;
	if (!p.matches)
		return HL_NOTFOUND;
	*out = p.found;
	return 0;
}

/* ---- @{TIME} ---- */

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return HL_INVALID;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

/* TIME of @{TIME} (t[0..len)) in nanoseconds since the epoch. */
static int parse_when(const char *t, size_t len, uint64_t *ns)
{
	char buf[64];
	if (len == 0 || len >= sizeof buf)
		return HL_INVALID;
	memcpy(buf, t, len);
	buf[len] = 0;
	char *end;
	if (buf[0] == '@') { /* unix seconds */
		unsigned long long v = strtoull(buf + 1, &end, 10);
		if (end == buf + 1 || *end || v > UINT64_MAX / 1000000000u)
			return HL_INVALID;
		*ns = v * 1000000000u;
		return 0;
	}
	unsigned long long n = strtoull(buf, &end, 10);
	if (end != buf && end[0] && !end[1] && strchr("smhdw", end[0])) { /* that long ago */
		uint64_t unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 :
		                end[0] == 'd' ? 86400 : 604800;
		uint64_t now = (uint64_t)time(NULL);
		if (n > now / unit)
			return HL_INVALID;
		*ns = (now - n * unit) * 1000000000u;
		return 0;
	}
	struct tm tm = {0};
	const char *p = buf;
	int y, mo, d, h = 23, mi = 59, sec = 59; /* a date alone: its end */
	if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &d))
		return HL_INVALID;
	if (*p == 'T' || *p == ' ') {
		p++;
		sec = 0;
		if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
			return HL_INVALID;
		if (*p == ':' && (p++, parse_digits(&p, 2, &sec)))
			return HL_INVALID;
		if (*p == 'Z')
			p++;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return HL_INVALID;
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
	time_t when = timegm(&tm);
	if (when < 0)
		return HL_INVALID;
	*ns = (uint64_t)when * 1000000000u + 999999999u; /* at or before: the whole second */
	return 0;
}

/* ---- resolving ---- */

typedef struct rev {
	hl_store *s;
	hl_forgotten forgotten;
	hl_id id;
	hl_commit *c; /* NULL when id is a tree */
} rev;

static int load(rev *r, const hl_id *id)
{
	hl_commit *c;
	int err = hl_commit_get(r->s, id, &c);
	if (err)
		return err;
	hl_commit_free(r->c);
	r->c = c;
	r->id = *id;
	return 0;
}

/* The n-th parent (1-based) of the current commit. */
static int parent(rev *r, unsigned n)
{
	if (!r->c)
		return HL_INVALID; /* a tree has no history */
	if (hl_forgotten_flags(&r->forgotten, &r->id) & HL_FORGOT_PARENTS)
		return HL_FORGOTTEN;
	if (n == 0 || n > r->c->nparents)
		return HL_NOTFOUND;
	hl_id p = r->c->parents[n - 1];
	int err = load(r, &p);
	return err == HL_INVALID ? HL_CORRUPT : err;
}

static int at_time(rev *r, uint64_t when)
{
	if (!r->c)
		return HL_INVALID;
	while (r->c->time_ns > when) {
		int err = parent(r, 1);
		if (err)
			return err;
	}
	return 0;
}

/* The base of a revision (before any ~, ^ or @): a ref, an id, or a unique prefix. */
static int resolve_base(rev *r, const char *base, size_t len)
{
	char name[HL_REF_MAX + 1];
	hl_id id;
	int err = HL_NOTFOUND;
	if (len == HL_ID_HEX_LEN && hl_id_parse(base, len, &id) == 0) {
		err = 0;
	} else {
		if (len == 0 || len > HL_REF_MAX)
			return HL_INVALID;
		memcpy(name, base, len);
		name[len] = 0;
		int named = hl_ref_valid(name);
		if (named)
			err = hl_ref_get(r->s, name, &id);
		if (err == HL_NOTFOUND && len >= PREFIX_MIN && len < HL_ID_HEX_LEN && is_hex(base, len))
			err = find_prefix(r->s, &r->forgotten, base, len, &id);
		else if (!named)
			return HL_INVALID;
	}
	if (err)
		return err;
	if ((err = load(r, &id)) != HL_INVALID)
		return err;
	r->id = id; /* not a commit: a tree (or whatever it is) stands for itself */
	return 0;
}

int hl_rev_parse(hl_store *s, const char *text, hl_id *commit, hl_id *tree)
{
	if (!s || !text)
		return HL_INVALID;
	rev r = {.s = s};
	hl_id at;
	int err = hl_api_forgotten_load(s, &r.forgotten, &at);
	size_t base = strcspn(text, "~^@");
	if (!err)
		err = resolve_base(&r, text, base);
	int timed = 0;
	for (const char *p = text + base; !err && *p;) {
		char op = *p++;
		unsigned long n = 1;
		if (op != '~' && op != '^' && op != '@') {
			err = HL_INVALID;
			break;
		}
		if (op == '@') {
			const char *close = *p == '{' ? strchr(p, '}') : NULL;
			uint64_t when;
			if (!close || timed++ || (err = parse_when(p + 1, (size_t)(close - p - 1), &when)) != 0) {
				err = HL_INVALID;
				break;
			}
			err = at_time(&r, when);
			p = close + 1;
			continue;
		}
		if (isdigit((unsigned char)*p)) {
			char *end;
			n = strtoul(p, &end, 10);
			if (n > 1000000000ul) {
				err = HL_INVALID;
				break;
			}
			p = end;
		}
		if (op == '^') {
			err = n ? parent(&r, (unsigned)n) : 0; /* ^0: the commit itself */
		} else {
			for (unsigned long i = 0; !err && i < n; i++)
				err = parent(&r, 1);
		}
	}
	if (!err && r.c && (hl_forgotten_flags(&r.forgotten, &r.id) & HL_FORGOT_TREE))
		err = HL_FORGOTTEN;
	if (!err) {
		if (commit)
			*commit = r.id;
		if (tree)
			*tree = r.c ? r.c->tree : r.id;
	}
	hl_commit_free(r.c);
	hl_forgotten_free(&r.forgotten);
	return err;
}
