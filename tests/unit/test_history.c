/* test_history.c — commits and history: the commit encoding (round trip, every rejection, what
 * the collector and a put see it name), revisions (~N, ^, ^N, @{TIME}, prefixes, ambiguity),
 * retention against restic's rules on a hand-written timeline, gc after forget freeing exactly
 * what only forgotten history reached, refs outside the prefix guarding shared history, and
 * concurrent agents committing to one ref without losing a commit. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dedup/commit.h"
#include "dedup/forgotten.h"
#include "dedup/links.h"
#include "dedup/tree.h"
#include "testutil.h"

static hl_store *open_store(const char *dir, uint64_t grace_s)
{
	hl_options o;
	hl_options_init(&o);
	o.gc_grace_s = grace_s;
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	return s;
}

/* A tree holding one file whose content is text (both stored); *blob gets the file's id. */
static hl_id tree_with(hl_store *s, const char *text, hl_id *blob)
{
	hl_id b;
	assert_int_equal(hl_put(s, text, strlen(text), &b, NULL), 0);
	hl_tree_entry e = {.kind = HL_TREE_FILE, .mode = 0644, .size = strlen(text), .id = b,
	                   .name = "file", .name_len = 4};
	uint8_t buf[256];
	size_t len;
	assert_int_equal(hl_tree_encode(&e, 1, buf, sizeof buf, &len), 0);
	hl_id t;
	assert_int_equal(hl_put(s, buf, len, &t, NULL), 0);
	if (blob)
		*blob = b;
	return t;
}

static uint64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return (uint64_t)timegm(&tm) * 1000000000ull;
}

static hl_id commit_at(hl_store *s, const char *ref, const char *text, uint64_t t, hl_id *blob)
{
	hl_id tree = tree_with(s, text, blob), id;
	hl_commit_options o = {.author = "agent-7", .message = text, .time_ns = t};
	hl_commit *c;
	assert_int_equal(hl_commit_ref(s, ref, &tree, NULL, &o, &id, &c), 0);
	assert_memory_equal(&c->tree, &tree, HL_ID_LEN); /* the commit as stored */
	assert_string_equal(c->message, text);
	assert_true(c->time_ns == t);
	hl_commit_free(c);
	return id;
}

/* ---- the encoding ---- */

static int count_link(const hl_id *id, void *ctx)
{
	(void)id;
	++*(int *)ctx;
	return 0;
}

static void test_encoding(void **st)
{
	(void)st;
	hl_commit c = {.nparents = 2, .time_ns = 1796534632285459111ull, .author = "agent-7",
	               .message = "fix the build\n\nsecond paragraph", .nmeta = 2, .files = 700,
	               .bytes = 1 << 20, .new_bytes = 4096, .added = 3, .changed = 5, .deleted = 1};
	memset(c.tree.b, 1, HL_ID_LEN);
	memset(c.parents[0].b, 2, HL_ID_LEN);
	memset(c.parents[1].b, 3, HL_ID_LEN);
	c.meta[0] = (hl_commit_meta){"task", "HEL-42"};
	c.meta[1] = (hl_commit_meta){"model", "m-1"};
	uint8_t buf[1024];
	size_t len;
	assert_int_equal(hl_commit_encode(&c, buf, sizeof buf, &len), 0);
	assert_int_equal(len, hl_commit_size(&c));
	assert_string_equal(c.meta[0].key, "model"); /* put in key order */
	hl_commit *d;
	assert_int_equal(hl_commit_parse(buf, len, &d), 0);
	assert_memory_equal(&d->tree, &c.tree, HL_ID_LEN);
	assert_int_equal(d->nparents, 2);
	assert_memory_equal(&d->parents[1], &c.parents[1], HL_ID_LEN);
	assert_int_equal(d->time_ns, c.time_ns);
	assert_string_equal(d->author, "agent-7");
	assert_string_equal(d->message, c.message);
	assert_int_equal(d->nmeta, 2);
	assert_string_equal(d->meta[1].key, "task");
	assert_string_equal(d->meta[1].value, "HEL-42");
	assert_int_equal(d->files, 700);
	assert_int_equal(d->deleted, 1);
	uint8_t again[1024];
	size_t len2;
	assert_int_equal(hl_commit_encode(d, again, sizeof again, &len2), 0); /* one encoding */
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	hl_commit_free(d);
	/* what it names: the collector its tree and parents, a put only its tree */
	int n = 0;
	assert_int_equal(hl_links_each(buf, len, count_link, &n), 0);
	assert_int_equal(n, 3);
	n = 0;
	assert_int_equal(hl_links_needed_each(buf, len, count_link, &n), 0);
	assert_int_equal(n, 1);
	assert_true(hl_links_magic(buf, len));
	/* forgotten: tree weak, parents weak */
	hl_forgotten f = {0};
	hl_id self;
	hl_hash(buf, len, &self);
	assert_int_equal(hl_forgotten_add(&f, &self, HL_FORGOT_TREE), 0);
	n = 0;
	assert_int_equal(hl_links_each_kept(buf, len, &self, &f, count_link, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(hl_forgotten_add(&f, &self, HL_FORGOT_PARENTS), 0);
	n = 0;
	assert_int_equal(hl_links_each_kept(buf, len, &self, &f, count_link, &n), 0);
	assert_int_equal(n, 0);
	hl_forgotten_free(&f);

	/* rejections on encode */
	assert_int_equal(hl_commit_encode(&c, buf, len - 1, &len2), HL_TOOBIG);
	hl_commit bad = c;
	bad.parents[1] = bad.parents[0];
	assert_int_equal(hl_commit_encode(&bad, buf, sizeof buf, &len2), HL_INVALID);
	bad = c;
	bad.meta[1].key = bad.meta[0].key;
	assert_int_equal(hl_commit_encode(&bad, buf, sizeof buf, &len2), HL_INVALID);
	bad = c;
	bad.meta[0].key = "bad key";
	assert_int_equal(hl_commit_encode(&bad, buf, sizeof buf, &len2), HL_INVALID);
	bad = c;
	bad.nparents = HL_COMMIT_PARENTS_MAX + 1;
	assert_int_equal(hl_commit_encode(&bad, buf, sizeof buf, &len2), HL_INVALID);
	char author[HL_COMMIT_AUTHOR_MAX + 2];
	memset(author, 'a', sizeof author - 1);
	author[sizeof author - 1] = 0;
	bad = c;
	bad.author = author;
	assert_int_equal(hl_commit_encode(&bad, buf, sizeof buf, &len2), HL_INVALID);

	/* rejections on decode: every byte cut short, one more, a NUL, meta out of order */
	assert_int_equal(hl_commit_encode(&c, buf, sizeof buf, &len), 0);
	for (size_t cut = 4; cut < len; cut++)
		assert_int_equal(hl_commit_parse(buf, cut, &d), HL_CORRUPT);
	buf[len] = 0;
	assert_int_equal(hl_commit_parse(buf, len + 1, &d), HL_CORRUPT);
	assert_int_equal(hl_commit_parse("HLTR", 4, &d), HL_INVALID);
	uint8_t copy[1024];
	memcpy(copy, buf, len);
	char *m = memmem(copy, len, "second", 6);
	assert_non_null(m);
	*m = 0;
	assert_int_equal(hl_commit_parse(copy, len, &d), HL_CORRUPT);
	memcpy(copy, buf, len);
	m = memmem(copy, len, "model", 5);
	memcpy(m, "zodel", 5); /* now after "task" */
	assert_int_equal(hl_commit_parse(copy, len, &d), HL_CORRUPT);
	memcpy(copy, buf, len);
	copy[7] = 1; /* reserved */
	assert_int_equal(hl_commit_parse(copy, len, &d), HL_CORRUPT);
}

/* ---- revisions ---- */

static void expect_rev(hl_store *s, const char *rev, const hl_id *want)
{
	hl_id got;
	int err = hl_rev_parse(s, rev, &got, NULL);
	if (err)
		fail_msg("revision %s: %s", rev, hl_strerror(err));
	assert_memory_equal(&got, want, HL_ID_LEN);
}

static void test_revisions(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("history-revs");
	hl_store *s = open_store(dir, 86400);
	uint64_t t0 = utc(2025, 12, 7, 10, 0);
	hl_id c[4], blob;
	for (int i = 0; i < 4; i++) {
		char text[32];
		snprintf(text, sizeof text, "version %d", i);
		c[i] = commit_at(s, "main", text, t0 + (uint64_t)i * 3600 * 1000000000ull, &blob);
	}
	expect_rev(s, "main", &c[3]);
	expect_rev(s, "main^", &c[2]);
	expect_rev(s, "main^^", &c[1]);
	expect_rev(s, "main~3", &c[0]);
	expect_rev(s, "main~1^", &c[1]);
	expect_rev(s, "main^0", &c[3]);
	char hex[HL_ID_HEX_LEN + 1], rev[128];
	hl_id_format(&c[1], hex);
	expect_rev(s, hex, &c[1]);
	snprintf(rev, sizeof rev, "%.10s~1", hex); /* a prefix, then a parent */
	expect_rev(s, rev, &c[0]);
	/* @{TIME}: the newest at or before it */
	expect_rev(s, "main@{2025-12-07T11:30:00Z}", &c[1]);
	expect_rev(s, "main@{2025-12-07T12:00}", &c[2]);
	snprintf(rev, sizeof rev, "main@{@%llu}", (unsigned long long)(t0 / 1000000000ull));
	expect_rev(s, rev, &c[0]);
	expect_rev(s, "main@{2025-12-08}", &c[3]);
	/* the root tree of a revision, and a tree standing for itself */
	hl_commit *cm;
	assert_int_equal(hl_commit_get(s, &c[2], &cm), 0);
	hl_id tree, got;
	assert_int_equal(hl_rev_parse(s, "main~1", NULL, &tree), 0);
	assert_memory_equal(&tree, &cm->tree, HL_ID_LEN);
	hl_id_format(&cm->tree, hex);
	assert_int_equal(hl_rev_parse(s, hex, &got, &tree), 0);
	assert_memory_equal(&got, &cm->tree, HL_ID_LEN);
	assert_memory_equal(&tree, &cm->tree, HL_ID_LEN);
	snprintf(rev, sizeof rev, "%s~1", hex);
	assert_int_equal(hl_rev_parse(s, rev, &got, NULL), HL_INVALID); /* a tree has no history */
	hl_commit_free(cm);
	/* failures */
	assert_int_equal(hl_rev_parse(s, "main~4", &got, NULL), HL_NOTFOUND);
	assert_int_equal(hl_rev_parse(s, "main^2", &got, NULL), HL_NOTFOUND);
	assert_int_equal(hl_rev_parse(s, "main@{2025-12-07T09:00}", &got, NULL), HL_NOTFOUND);
	assert_int_equal(hl_rev_parse(s, "nosuch", &got, NULL), HL_NOTFOUND);
	assert_int_equal(hl_rev_parse(s, "main@{yesterday}", &got, NULL), HL_INVALID);
	assert_int_equal(hl_rev_parse(s, "main@{1d", &got, NULL), HL_INVALID);
	assert_int_equal(hl_rev_parse(s, "ma in", &got, NULL), HL_INVALID);
	assert_int_equal(hl_rev_parse(s, "main~x", &got, NULL), HL_INVALID);
	assert_int_equal(hl_rev_parse(s, "main~1x", &got, NULL), HL_INVALID);
	assert_int_equal(hl_rev_parse(s, "", &got, NULL), HL_INVALID);
	hl_id_format(&blob, hex);
	assert_int_equal(hl_rev_parse(s, hex, &got, NULL), 0); /* a blob stands for itself */
	assert_memory_equal(&got, &blob, HL_ID_LEN);
	/* a merge: ^2 is its second parent */
	hl_commit m = {.tree = tree, .nparents = 2, .time_ns = t0 + 5 * 3600 * 1000000000ull};
	m.parents[0] = c[3], m.parents[1] = c[0];
	hl_id mid;
	assert_int_equal(hl_commit_put(s, &m, &mid), 0);
	assert_int_equal(hl_ref_cas(s, "main", &c[3], &mid), 0);
	expect_rev(s, "main^2", &c[0]);
	expect_rev(s, "main^1", &c[3]);
	/* a prefix two commits share is ambiguous: commit until two ids begin alike */
	hl_id prev = mid, seen[4096];
	char want[5] = "";
	for (int i = 0; i < 4096 && !want[0]; i++) {
		hl_commit x = {.tree = tree, .nparents = 1, .time_ns = m.time_ns + (uint64_t)(i + 1)};
		x.parents[0] = prev;
		assert_int_equal(hl_commit_put(s, &x, &seen[i]), 0);
		prev = seen[i];
		for (int j = 0; j < i && !want[0]; j++)
			if (!memcmp(seen[j].b, seen[i].b, 2)) {
				hl_id_format(&seen[i], hex);
				memcpy(want, hex, 4);
			}
	}
	assert_true(want[0]);
	assert_int_equal(hl_ref_set(s, "side", &prev), 0);
	assert_int_equal(hl_rev_parse(s, want, &got, NULL), HL_AMBIGUOUS);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* ---- retention ---- */

/* The timeline, newest first (UTC). 2025-12-07 is a Sunday: c0..c7 share its ISO week. */
#define NT 13
static uint64_t timeline[NT];

static void make_timeline(void)
{
	uint64_t t[NT] = {utc(2025, 12, 7, 10, 30), utc(2025, 12, 7, 10, 10), utc(2025, 12, 7, 9, 50),
	                  utc(2025, 12, 7, 8, 0),   utc(2025, 12, 6, 23, 0),  utc(2025, 12, 6, 12, 0),
	                  utc(2025, 12, 5, 12, 0),  utc(2025, 12, 2, 12, 0),  utc(2025, 11, 26, 12, 0),
	                  utc(2025, 11, 11, 12, 0), utc(2025, 10, 16, 12, 0), utc(2024, 6, 1, 12, 0),
	                  utc(2024, 6, 1, 8, 0)};
	memcpy(timeline, t, sizeof t);
}

typedef struct decided {
	const hl_id *ids;
	unsigned kept; /* bit i: c_i kept */
	char why[NT][64];
} decided;

static int record(const char *ref, const hl_id *id, const hl_commit *c, int keep, const char *why,
                  void *ctx)
{
	(void)ref, (void)c;
	decided *d = ctx;
	for (int i = 0; i < NT; i++)
		if (hl_id_equal(id, &d->ids[i])) {
			d->kept |= (unsigned)keep << i;
			snprintf(d->why[i], sizeof d->why[i], "%s", why);
		}
	return 0;
}

static unsigned bits(const char *list) /* "0,4,6" → bits */
{
	unsigned b = 0;
	for (const char *p = list; *p;) {
		char *end;
		b |= 1u << strtoul(p, &end, 10);
		p = *end ? end + 1 : end;
	}
	return b;
}

static unsigned decide(hl_store *s, const hl_id *ids, hl_forget_policy p, decided *d)
{
	memset(d, 0, sizeof(*d));
	d->ids = ids;
	hl_forget_report r;
	assert_int_equal(hl_forget(s, "agents/", &p, 1, record, d, &r), 0);
	assert_int_equal(r.commits, NT);
	return d->kept;
}

typedef struct logged {
	hl_id ids[4096];
	unsigned flags[4096];
	size_t n;
} logged;

static int log_into(const hl_id *id, const hl_commit *c, unsigned flags, void *ctx)
{
	(void)c;
	logged *l = ctx;
	if (l->n == 4096)
		return 1;
	l->ids[l->n] = *id;
	l->flags[l->n++] = flags;
	return 0;
}

static void test_forget_rules(void **st)
{
	(void)st;
	make_timeline();
	char *dir = tu_tmpdir("history-forget");
	hl_store *s = open_store(dir, 0);
	hl_id ids[NT], blobs[NT], trees[NT];
	for (int i = NT - 1; i >= 0; i--) { /* oldest first */
		char text[32];
		snprintf(text, sizeof text, "snapshot %d", i);
		ids[i] = commit_at(s, "agents/7/main", text, timeline[i], &blobs[i]);
		assert_int_equal(hl_rev_parse(s, "agents/7/main", NULL, &trees[i]), 0);
	}
	decided d;
	/* restic's rules, each expectation worked out by hand from its documented semantics */
	assert_int_equal(decide(s, ids, (hl_forget_policy){.last = 2}, &d), bits("0,1"));
	assert_string_equal(d.why[1], "last");
	assert_int_equal(decide(s, ids, (hl_forget_policy){.hourly = 3}, &d), bits("0,2,3"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.daily = 3}, &d), bits("0,4,6"));
	/* more days asked than there are: every day's newest, and the oldest with counts left */
	assert_int_equal(decide(s, ids, (hl_forget_policy){.daily = 20}, &d), bits("0,4,6,7,8,9,10,11,12"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.daily = 5}, &d), bits("0,4,6,7,8"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.weekly = 2}, &d), bits("0,8"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.monthly = 3}, &d), bits("0,8,10"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.yearly = 5}, &d), bits("0,11,12"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.daily = -1}, &d), bits("0,4,6,7,8,9,10,11,12"));
	/* within: strictly after the newest minus the duration */
	assert_int_equal(decide(s, ids, (hl_forget_policy){.within_days = 1}, &d), bits("0,1,2,3,4,5"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.within_hours = 2}, &d), bits("0,1,2"));
	assert_int_equal(decide(s, ids, (hl_forget_policy){.within_months = 1}, &d), bits("0,1,2,3,4,5,6,7,8,9"));
	assert_string_equal(d.why[0], "within");
	/* rules together: each counts on its own */
	hl_forget_policy mixed = {.last = 1, .monthly = 2, .yearly = 2};
	assert_int_equal(decide(s, ids, mixed, &d), bits("0,8,11"));
	assert_string_equal(d.why[0], "last,monthly,yearly");
	assert_string_equal(d.why[8], "monthly");
	/* an empty policy forgets nothing */
	assert_int_equal(hl_forget(s, NULL, &(hl_forget_policy){0}, 0, NULL, NULL, NULL), HL_INVALID);

	/* for real: 10 forgotten, history cut at c11 */
	hl_forget_report r;
	assert_int_equal(hl_forget(s, "agents/", &mixed, 0, NULL, NULL, &r), 0);
	assert_int_equal(r.kept, 3);
	assert_int_equal(r.forgotten, 10);
	assert_int_equal(r.cut, 1);
	/* kept commits are not rewritten; forgotten ones are no revision any more */
	hl_id got;
	expect_rev(s, "agents/7/main", &ids[0]);
	assert_int_equal(hl_rev_parse(s, "agents/7/main~1", &got, NULL), HL_FORGOTTEN);
	expect_rev(s, "agents/7/main~8", &ids[8]);
	assert_int_equal(hl_rev_parse(s, "agents/7/main~12", &got, NULL), HL_FORGOTTEN); /* beyond the cut */
	/* a second forget with the same policy decides nothing new */
	assert_int_equal(hl_forget(s, "agents/", &mixed, 0, NULL, NULL, &r), 0);
	assert_int_equal(r.commits, 3);
	assert_int_equal(r.forgotten + r.cut, 0);

	/* gc frees exactly what only forgotten history reached: the snapshots of c1..c7, c9, c10,
	 * c12 and the commit c12 beyond the cut; kept snapshots and the forgotten commits between
	 * kept ones (history still walks through them) stay */
	hl_close(s);
	time_t t0 = time(NULL);
	while (time(NULL) <= t0 + 1) { /* grace 0: what was written this second is still young */
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	s = open_store(dir, 0);
	hl_gc_report gr;
	assert_int_equal(hl_gc(s, NULL, &gr), 0);
	for (int i = 0; i < NT; i++) {
		int kept = i == 0 || i == 8 || i == 11;
		char what[32];
		snprintf(what, sizeof what, "c%d", i);
		if ((hl_has(s, &blobs[i]) == 0) != kept || (hl_has(s, &trees[i]) == 0) != kept)
			fail_msg("%s: its snapshot is %s", what, kept ? "gone" : "still there");
		if ((hl_has(s, &ids[i]) == 0) != (i != 12))
			fail_msg("%s: the commit is %s", what, i == 12 ? "still there" : "gone");
	}
	assert_int_equal(gr.collected, 2 * 10 + 1);
	expect_rev(s, "agents/7/main~11", &ids[11]);
	/* the log shows what is kept, with the cut */
	logged l = {0};
	assert_int_equal(hl_history(s, &ids[0], 0, 0, log_into, &l), 0);
	assert_int_equal(l.n, 3);
	assert_memory_equal(&l.ids[0], &ids[0], HL_ID_LEN);
	assert_memory_equal(&l.ids[1], &ids[8], HL_ID_LEN);
	assert_memory_equal(&l.ids[2], &ids[11], HL_ID_LEN);
	assert_int_equal(l.flags[2], HL_HIST_CUT);
	assert_int_equal(l.flags[0], HL_HIST_GAP); /* c1 was forgotten; c8 follows */
	assert_int_equal(l.flags[1], HL_HIST_GAP);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* A ref outside the prefix keeps all it reaches: shared history is neither forgotten nor cut. */
static void test_forget_guard(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("history-guard");
	hl_store *s = open_store(dir, 86400);
	uint64_t t0 = utc(2025, 1, 1, 0, 0);
	hl_id ids[6];
	for (int i = 0; i < 6; i++) {
		char text[32];
		snprintf(text, sizeof text, "v%d", i);
		ids[i] = commit_at(s, "agents/1/main", text, t0 + (uint64_t)i * 86400 * 1000000000ull, NULL);
	}
	assert_int_equal(hl_ref_set(s, "release/1", &ids[2]), 0); /* an older state someone keeps */
	hl_forget_report r;
	assert_int_equal(hl_forget(s, "agents/", &(hl_forget_policy){.last = 1}, 0, NULL, NULL, &r), 0);
	assert_int_equal(r.refs, 1);
	assert_int_equal(r.forgotten, 2); /* v4, v3: v2..v0 are what release/1 reaches */
	assert_int_equal(r.cut, 0);       /* v5 still reaches v2 through the forgotten v4, v3 */
	expect_rev(s, "agents/1/main~3", &ids[2]);
	expect_rev(s, "release/1~2", &ids[0]);
	hl_id got;
	assert_int_equal(hl_rev_parse(s, "agents/1/main~1", &got, NULL), HL_FORGOTTEN);
	logged *l = calloc(1, sizeof(*l));
	assert_int_equal(hl_history(s, &ids[5], 0, 0, log_into, l), 0);
	assert_int_equal(l->n, 4); /* v5, then v2 v1 v0 */
	assert_memory_equal(&l->ids[1], &ids[2], HL_ID_LEN);
	/* a limit and a time bound */
	l->n = 0;
	assert_int_equal(hl_history(s, &ids[5], t0 + 2 * 86400 * 1000000000ull, 2, log_into, l), 0);
	assert_int_equal(l->n, 2);
	assert_memory_equal(&l->ids[0], &ids[1], HL_ID_LEN);
	free(l);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* Agents committing to one ref at once with retry: the ref's history holds every commit. */
#define AGENTS 4
#define EACH 25

typedef struct agent {
	hl_store *s;
	int n;
	hl_id ids[EACH];
} agent;

static void *agent_main(void *arg)
{
	agent *a = arg;
	for (int i = 0; i < EACH; i++) {
		char text[64];
		snprintf(text, sizeof text, "agent %p commit %d", (void *)a, i);
		hl_id tree = tree_with(a->s, text, NULL);
		hl_commit_options o = {.author = "agent", .message = text, .retry = 1};
		if (hl_commit_ref(a->s, "shared/main", &tree, NULL, &o, &a->ids[a->n], NULL) == 0)
			a->n++;
	}
	return NULL;
}

/* The ref's history (read through s) holds every commit the agents made, and nothing else. */
static void check_all_logged(hl_store *s, const agent *a, int agents)
{
	logged *l = calloc(1, sizeof(*l));
	hl_id head;
	assert_int_equal(hl_ref_get(s, "shared/main", &head), 0);
	assert_int_equal(hl_history(s, &head, 0, 0, log_into, l), 0);
	for (int i = 0; i < agents; i++) {
		assert_int_equal(a[i].n, EACH); /* retry: every commit lands */
		for (int j = 0; j < a[i].n; j++) {
			size_t k = 0;
			while (k < l->n && !hl_id_equal(&l->ids[k], &a[i].ids[j]))
				k++;
			if (k == l->n)
				fail_msg("agent %d's commit %d is not in the ref's history", i, j);
		}
	}
	assert_int_equal(l->n, (size_t)agents * EACH); /* one chain: nothing else, nothing twice */
	free(l);
}

static void test_concurrent_commits(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("history-concurrent");
	hl_store *s = open_store(dir, 86400);
	agent a[AGENTS];
	pthread_t t[AGENTS];
	for (int i = 0; i < AGENTS; i++) {
		a[i] = (agent){.s = s};
		assert_int_equal(pthread_create(&t[i], NULL, agent_main, &a[i]), 0);
	}
	for (int i = 0; i < AGENTS; i++)
		pthread_join(t[i], NULL);
	check_all_logged(s, a, AGENTS);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* ---- on a shared bucket: nodes see one history; forget and the bucket's gc work as on one
 * machine ---- */

static hl_store *open_node(const char *root, const char *name, const tu_s3 *srv, char *endpoint)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	hl_options o;
	hl_options_init(&o);
	tu_s3_options(&o, srv, endpoint);
	o.sync = HL_SYNC_NONE;
	o.fleet_lease_ms = 1000;
	o.gc_grace_s = 1;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fail_msg("open node %s: %s", name, hl_strerror(err));
	return s;
}

static void test_bucket_history(void **st)
{
	(void)st;
	char *root = tu_tmpdir("history-bucket"), bucket[512], endpoint[64];
	snprintf(bucket, sizeof bucket, "%s/bucket", root);
	tu_s3 srv;
	tu_s3_start(&srv, bucket, 0, 0);
	hl_store *a = open_node(root, "a", &srv, endpoint), *b = open_node(root, "b", &srv, endpoint);
	uint64_t t0 = utc(2025, 3, 1, 0, 0), day = 86400ull * 1000000000ull;
	hl_id c[4], blobs[4];
	for (int i = 0; i < 3; i++) {
		char text[32];
		snprintf(text, sizeof text, "bucket v%d", i);
		c[i] = commit_at(a, "agents/1/main", text, t0 + (uint64_t)i * day, &blobs[i]);
	}
	/* node b commits on top of what a did: the ref is the bucket's */
	hl_id tree = tree_with(b, "bucket v3", &blobs[3]);
	hl_commit_options o = {.message = "from b", .time_ns = t0 + 3 * day, .retry = 1};
	assert_int_equal(hl_commit_ref(b, "agents/1/main", &tree, NULL, &o, &c[3], NULL), 0);
	logged *l = calloc(1, sizeof(*l));
	assert_int_equal(hl_history(a, &c[3], 0, 0, log_into, l), 0);
	assert_int_equal(l->n, 4);
	for (int i = 0; i < 4; i++)
		assert_memory_equal(&l->ids[i], &c[3 - i], HL_ID_LEN);
	expect_rev(a, "agents/1/main~3", &c[0]);
	char hex[HL_ID_HEX_LEN + 1], rev[32];
	hl_id_format(&c[1], hex);
	snprintf(rev, sizeof rev, "%.12s", hex);
	expect_rev(b, rev, &c[1]);
	/* forget on a, collect on b: the forgotten snapshots leave the bucket */
	hl_forget_report r;
	assert_int_equal(hl_forget(a, NULL, &(hl_forget_policy){.last = 2}, 0, NULL, NULL, &r), 0);
	assert_int_equal(r.forgotten, 2);
	assert_int_equal(r.cut, 1);
	l->n = 0;
	assert_int_equal(hl_history(b, &c[3], 0, 0, log_into, l), 0);
	assert_int_equal(l->n, 2);
	assert_int_equal(l->flags[1], HL_HIST_CUT);
	/* the writers leave (what they relied on lately is theirs to keep while they live); a node
	 * that relied on nothing collects once everything is past the grace of 1 s */
	hl_close(a);
	hl_close(b);
	time_t t = time(NULL);
	while (time(NULL) <= t + 2) {
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	hl_store *fresh = open_node(root, "c", &srv, endpoint);
	hl_gc_report gr;
	int err;
	for (int tries = 0; (err = hl_gc(fresh, NULL, &gr)) == HL_BUSY && tries < 100; tries++) {
		struct timespec ts = {0, 200000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(err, 0);
	print_message("bucket gc: %llu objects, %llu reachable, %llu young, %llu held, %llu collected\n",
	              (unsigned long long)gr.objects, (unsigned long long)gr.reachable,
	              (unsigned long long)gr.young, (unsigned long long)gr.held, (unsigned long long)gr.collected);
	for (int i = 0; i < 4; i++)
		if ((hl_has(fresh, &blobs[i]) == 0) != (i >= 2))
			fail_msg("v%d: its file is %s the bucket", i, i >= 2 ? "gone from" : "still in");
	expect_rev(fresh, "agents/1/main~1", &c[2]);
	hl_id got;
	assert_int_equal(hl_rev_parse(fresh, "agents/1/main~2", &got, NULL), HL_FORGOTTEN);
	hl_close(fresh);
	free(l);
	tu_s3_stop(&srv);
	tu_rmrf(root);
	free(root);
}

/* Agents on two nodes of one bucket commit to one ref at once: none of their commits is lost. */
static void test_bucket_concurrent(void **st)
{
	(void)st;
	char *root = tu_tmpdir("history-bucket-agents"), bucket[512], endpoint[64];
	snprintf(bucket, sizeof bucket, "%s/bucket", root);
	tu_s3 srv;
	tu_s3_start(&srv, bucket, 0, 0);
	agent a[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		a[i] = (agent){.s = open_node(root, i ? "b" : "a", &srv, endpoint)};
		assert_int_equal(pthread_create(&t[i], NULL, agent_main, &a[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	check_all_logged(a[1].s, a, 2);
	for (int i = 0; i < 2; i++)
		hl_close(a[i].s);
	tu_s3_stop(&srv);
	tu_rmrf(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_revisions),
		cmocka_unit_test(test_forget_rules),
		cmocka_unit_test(test_forget_guard),
		cmocka_unit_test(test_concurrent_commits),
		cmocka_unit_test(test_bucket_history),
		cmocka_unit_test(test_bucket_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
