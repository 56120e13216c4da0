/* test_crashsim.c — seeded power-cut simulation of the store (tests/powerloss.h).
 *
 * For each seed a child process opens a fresh store through the journaling I/O table and runs a
 * seeded workload in two threads (puts, batches, large chunked objects, edits of earlier objects
 * stored as deltas against them, ref compare-and-swap and deletes, kv puts, collections with
 * compaction and repacking, reads), reporting every attempt and every
 * acknowledgement through a pipe to the parent, which keeps the model. At a seeded file call the
 * child kills itself; the parent applies a seeded power cut to what was not durable, sometimes lets
 * a second child crash the same way while it recovers the store, then reopens it and checks the
 * model: every acknowledged object reads back with its bytes (unless a collection could take it: it
 * was unreachable when one began), each ref and kv key holds its last acknowledged value or one
 * attempted since, an attempted object is whole or absent, verify finds nothing wrong, the index
 * and the segment files agree (verify --deep), and the store takes writes again.
 *
 * batch_across_roll cuts the power at every file call of one batch whose records span a segment
 * roll (a delta in the new segment, its base at the end of the old one), several ways each.
 *
 * HELIOS_CRASHSIM_SEEDS (default 300) seeds from HELIOS_CRASHSIM_FIRST (default 1);
 * HELIOS_CRASHSIM_SEED=N runs seed N alone. A failing seed prints itself; the workload, the crash
 * point and the cut are functions of the seed (with HELIOS_CRASHSIM_THREADS=1 the interleaving is
 * too, up to the index flusher's timer). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "api/api.h"
#include "testutil.h"
#include "powerloss.h"

#define SLOTS 4 /* refs sim/r0..3 and kv keys sim/k0..3; thread t owns slots 2t and 2t+1 */
#define OPS 24

enum {
	E_OBJ_TRY = 1, E_OBJ_ACK, E_REF_TRY, E_REF_ACK, E_DEL_TRY, E_DEL_ACK, E_KV_TRY, E_KV_ACK,
	E_GC_START, E_GC_DONE, E_CALLS,
};

typedef struct ev {
	uint32_t type, slot;
	hl_id id;
	uint64_t n;
} ev;

static int ev_fd;
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;

static void report(uint32_t type, uint32_t slot, const hl_id *id)
{
	ev e = {.type = type, .slot = slot};
	if (id)
		e.id = *id;
	pthread_mutex_lock(&ev_mu);
	if (write(ev_fd, &e, sizeof e) != sizeof e)
		_exit(70);
	pthread_mutex_unlock(&ev_mu);
}

static void sim_options(hl_options *o)
{
	hl_options_init(o);
	o->sync = HL_SYNC_ALWAYS;
	o->segment_size = 64u << 10; /* rolls, and sparse segments to compact */
	o->chunk_threshold = 64u << 10;
	o->chunk_min = 4096, o->chunk_avg = 16384, o->chunk_max = 65536;
	o->gc_grace_s = 0; /* a collection may take anything unreachable */
	o->map_size = 256u << 20;
	o->health_interval_ms = 0;
	o->l1_bytes = 1u << 20;
}

static void ref_name(char *buf, uint32_t slot) { snprintf(buf, 16, "sim/r%u", slot); }
static void kv_key(char *buf, uint32_t slot) { snprintf(buf, 16, "k%u", slot); }

/* ---------- the child: a seeded workload until the cut ---------- */

typedef struct worker {
	hl_store *s;
	uint64_t rng;
	unsigned t;
	hl_id own[OPS * 8];
	size_t nown;
	hl_id ref_now[2];
	int ref_set[2];
} worker;

static void fail_child(int code) { _exit(code); }

static size_t fill_object(worker *w, uint8_t *buf, size_t len)
{
	tu_fill(&w->rng, buf, len);
	if (tu_rand(&w->rng) % 3 == 0)
		memset(buf, 'a' + (int)(tu_rand(&w->rng) % 26), len / 2); /* some compress */
	return len;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	uint8_t *buf = malloc(200u << 10), (*bat)[6000] = malloc(6 * 6000);
	if (!buf || !bat)
		fail_child(10);
	for (int i = 0; i < OPS; i++) {
		uint64_t r = tu_rand(&w->rng) % 100;
		hl_id id;
		int err;
		hl_buf *old;
		if (r < 8 && w->nown && hl_get(w->s, &w->own[tu_rand(&w->rng) % w->nown], &old) == 0) {
			/* an edit of an earlier object, stored as a delta against it (when it is small), and
			 * in the same batch an edit of that edit, whose base the store finds by similarity
			 * (the earlier record of the batch) */
			size_t len = hl_buf_len(old) < 100u << 10 ? hl_buf_len(old) : 100u << 10;
			uint8_t *again = buf + (100u << 10);
			memcpy(buf, hl_buf_data(old), len);
			tu_fill(&w->rng, buf + tu_rand(&w->rng) % (len + 1) / 2, len / 8);
			memcpy(again, buf, len);
			tu_fill(&w->rng, again + tu_rand(&w->rng) % (len + 1) / 2, len / 16);
			hl_put_item it[2] = {{.data = buf, .len = len}, {.data = again, .len = len}};
			hl_hash(buf, len, &it[0].id);
			hl_hash(again, len, &it[1].id);
			hl_id base;
			hl_hash(hl_buf_data(old), hl_buf_len(old), &base);
			const hl_id *bases[2] = {&base, NULL};
			hl_buf_unref(old);
			report(E_OBJ_TRY, 0, &it[0].id);
			report(E_OBJ_TRY, 0, &it[1].id);
			if (hl_local_put_like(w->s->local, it, bases, 2) != 0)
				fail_child(18);
			for (int k = 0; k < 2; k++) {
				report(E_OBJ_ACK, 0, &it[k].id);
				w->own[w->nown++] = it[k].id;
			}
		} else if (r < 28 || (r < 52 && r >= 38)) { /* one object: small, or large (chunked) */
			size_t len = r < 28 ? 1 + tu_rand(&w->rng) % 6000 : (70u << 10) + tu_rand(&w->rng) % (120u << 10);
			fill_object(w, buf, len);
			hl_hash(buf, len, &id);
			report(E_OBJ_TRY, 0, &id);
			if ((err = hl_put(w->s, buf, len, &id, NULL)) != 0)
				fail_child(11);
			report(E_OBJ_ACK, 0, &id);
			w->own[w->nown++] = id;
		} else if (r < 38) { /* a batch */
			hl_put_item it[6];
			size_t n = 2 + tu_rand(&w->rng) % 5;
			for (size_t k = 0; k < n; k++) {
				size_t len = 1 + tu_rand(&w->rng) % 6000;
				fill_object(w, bat[k], len);
				it[k] = (hl_put_item){.data = bat[k], .len = len};
				hl_hash(bat[k], len, &id);
				report(E_OBJ_TRY, 0, &id);
			}
			if (hl_put_batch(w->s, it, n) != 0)
				fail_child(12);
			for (size_t k = 0; k < n; k++) {
				report(E_OBJ_ACK, 0, &it[k].id);
				w->own[w->nown++] = it[k].id;
			}
		} else if (r < 66 && w->nown) { /* move a ref by compare-and-swap */
			unsigned k = (unsigned)(tu_rand(&w->rng) % 2), slot = w->t * 2 + k;
			char name[16];
			ref_name(name, slot);
			id = w->own[tu_rand(&w->rng) % w->nown];
			report(E_REF_TRY, slot, &id);
			err = hl_ref_cas(w->s, name, w->ref_set[k] ? &w->ref_now[k] : NULL, &id);
			if (err == 0) {
				report(E_REF_ACK, slot, &id);
				w->ref_now[k] = id, w->ref_set[k] = 1;
			} else if (err != HL_INCOMPLETE) { /* incomplete: a collection took the target */
				fail_child(13);
			}
		} else if (r < 71 && w->nown) { /* delete a ref */
			unsigned k = (unsigned)(tu_rand(&w->rng) % 2), slot = w->t * 2 + k;
			char name[16];
			ref_name(name, slot);
			if (!w->ref_set[k])
				continue;
			report(E_DEL_TRY, slot, NULL);
			if (hl_ref_delete(w->s, name, &w->ref_now[k]) != 0)
				fail_child(14);
			report(E_DEL_ACK, slot, NULL);
			w->ref_set[k] = 0;
		} else if (r < 84) { /* a kv value */
			unsigned slot = w->t * 2 + (unsigned)(tu_rand(&w->rng) % 2);
			char key[16];
			kv_key(key, slot);
			size_t len = 1 + tu_rand(&w->rng) % 3000;
			fill_object(w, buf, len);
			hl_hash(buf, len, &id);
			report(E_KV_TRY, slot, &id);
			if (hl_kv_put(w->s, "sim", key, strlen(key), buf, len) != 0)
				fail_child(15);
			report(E_KV_ACK, slot, &id);
		} else if (r < 92 && w->t == 0) { /* a collection, compacting, every other one repacking */
			hl_gc_options go;
			hl_gc_options_init(&go);
			go.repack = tu_rand(&w->rng) % 2 ? 4 + (int)(tu_rand(&w->rng) % 2) : 0;
			hl_gc_report gr;
			report(E_GC_START, 0, NULL);
			err = hl_gc(w->s, &go, &gr);
			if (err && err != HL_BUSY)
				fail_child(16);
			report(E_GC_DONE, 0, NULL);
		} else if (w->nown) { /* a read: never wrong bytes */
			hl_buf *b;
			id = w->own[tu_rand(&w->rng) % w->nown];
			err = hl_get(w->s, &id, &b);
			if (err == 0)
				hl_buf_unref(b);
			else if (err != HL_NOTFOUND)
				fail_child(17);
		}
	}
	free(buf);
	free(bat);
	return NULL;
}

/* In a child: installs the journaling table (the process dies before file call crash_at) and
 * opens root's store with the simulation's options. */
static hl_store *open_journaled(const char *root, uint64_t crash_at)
{
	char store[4200], journal[4200], stash[4200], index[4300];
	snprintf(store, sizeof store, "%s/store", root);
	snprintf(journal, sizeof journal, "%s/journal", root);
	snprintf(stash, sizeof stash, "%s/stash", root);
	snprintf(index, sizeof index, "%s/index", store);
	pl_install(journal, stash, index, crash_at);
	hl_options o;
	sim_options(&o);
	hl_store *s;
	if (hl_open(store, &o, &s) != 0)
		fail_child(3);
	return s;
}

/* Runs the workload (or, recover_only, just opens the store and stores a little) with the
 * journaling table; dies by SIGKILL at call crash_at or at the end. */
static void child_main(const char *root, int fd, uint64_t seed, uint64_t crash_at, int recover_only)
{
	ev_fd = fd;
	hl_store *s = open_journaled(root, crash_at);
	int threads = tu_env_int("HELIOS_CRASHSIM_THREADS", 2);
	static worker w[2];
	pthread_t tid[2];
	for (int t = 0; t < threads && t < 2; t++) {
		memset(&w[t], 0, sizeof w[t]);
		w[t].s = s, w[t].t = (unsigned)t, w[t].rng = seed * 7919 + (uint64_t)t + 1;
		if (recover_only) { /* a few writes after recovery: they count too */
			uint8_t b[100];
			tu_fill(&w[t].rng, b, sizeof b);
			hl_id id;
			hl_hash(b, sizeof b, &id);
			report(E_OBJ_TRY, 0, &id);
			if (hl_put(s, b, sizeof b, &id, NULL) != 0)
				fail_child(18);
			report(E_OBJ_ACK, 0, &id);
			continue;
		}
		pthread_create(&tid[t], NULL, worker_main, &w[t]);
	}
	for (int t = 0; !recover_only && t < threads && t < 2; t++)
		pthread_join(tid[t], NULL);
	ev e = {.type = E_CALLS, .n = pl_calls()};
	if (write(fd, &e, sizeof e) != sizeof e)
		_exit(70);
	kill(getpid(), SIGKILL); /* the power goes with the store still open */
	_exit(71);
}

/* ---------- the parent: the model, the cut and the check ---------- */

#define MAXV 16
typedef struct name_model {
	hl_id v[MAXV]; /* v[0]: the acknowledged value; then values attempted since */
	int none[MAXV]; /* the value is "no such name" */
	int n;
	int pending;   /* a change was attempted after the acknowledged value */
} name_model;

typedef struct obj_model {
	hl_id id;
	int acked, may_vanish;
} obj_model;

typedef struct model {
	obj_model *o;
	size_t n, cap;
	name_model ref[SLOTS], kv[SLOTS];
	int gc_active;
	uint64_t calls;
} model;

static void name_init(name_model *m)
{
	memset(m, 0, sizeof(*m));
	m->n = 1;
	m->none[0] = 1;
}

static void name_try(name_model *m, const hl_id *id)
{
	if (m->n == MAXV)
		fail_msg("model: too many attempts on one name");
	m->none[m->n] = id == NULL;
	if (id)
		m->v[m->n] = *id;
	m->n++;
	m->pending = 1;
}

static void name_ack(name_model *m, const hl_id *id)
{
	name_init(m);
	if (id) {
		m->none[0] = 0;
		m->v[0] = *id;
	}
}

/* Whether id is the settled value of a name (acknowledged, nothing attempted since). */
static int rooted(model *m, const hl_id *id)
{
	for (int k = 0; k < SLOTS; k++) {
		if (!m->ref[k].pending && !m->ref[k].none[0] && hl_id_equal(&m->ref[k].v[0], id))
			return 1;
		if (!m->kv[k].pending && !m->kv[k].none[0] && hl_id_equal(&m->kv[k].v[0], id))
			return 1;
	}
	return 0;
}

static void model_event(model *m, const ev *e)
{
	obj_model *o;
	switch (e->type) {
	case E_OBJ_TRY:
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 256;
			m->o = realloc(m->o, m->cap * sizeof(*m->o));
			assert_non_null(m->o);
		}
		m->o[m->n++] = (obj_model){.id = e->id};
		break;
	case E_OBJ_ACK:
		for (size_t i = m->n; i-- > 0;)
			if (hl_id_equal(&m->o[i].id, &e->id)) {
				m->o[i].acked = 1;
				break;
			}
		break;
	case E_REF_TRY:
	case E_DEL_TRY:
	case E_KV_TRY: {
		name_model *nm = e->type == E_KV_TRY ? &m->kv[e->slot] : &m->ref[e->slot];
		if (m->gc_active && !nm->none[0]) /* the settled value stops being a root under a collection */
			for (size_t i = 0; i < m->n; i++)
				if (hl_id_equal(&m->o[i].id, &nm->v[0]))
					m->o[i].may_vanish = 1;
		name_try(nm, e->type == E_DEL_TRY ? NULL : &e->id);
		break;
	}
	case E_REF_ACK:
		name_ack(&m->ref[e->slot], &e->id);
		break;
	case E_DEL_ACK:
		name_ack(&m->ref[e->slot], NULL);
		break;
	case E_KV_ACK:
		name_ack(&m->kv[e->slot], &e->id);
		break;
	case E_GC_START:
		m->gc_active = 1;
		for (size_t i = 0; i < m->n; i++) {
			o = &m->o[i];
			if (!rooted(m, &o->id))
				o->may_vanish = 1;
		}
		break;
	case E_GC_DONE:
		m->gc_active = 0;
		break;
	case E_CALLS:
		m->calls = e->n;
		break;
	}
}

/* A child's round: what it runs (with the write end of a pipe) and what the parent does with
 * each rec-byte message it writes there. */
typedef struct child_round {
	void (*child)(const char *root, int fd, const struct child_round *r);
	void (*take)(const void *msg, struct child_round *r);
	size_t rec;
	uint64_t seed, crash_at;
	int recover_only;
	model *m;
	uint64_t calls[2];
} child_round;

/* Forks a child for one round and hands its messages to take; the child must end by SIGKILL. */
static void run_round(const char *root, child_round *rd)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		rd->child(root, p[1], rd);
		_exit(72);
	}
	close(p[1]);
	uint8_t msg[64];
	assert_true(rd->rec <= sizeof msg);
	size_t got = 0;
	for (;;) {
		ssize_t r = read(p[0], msg + got, rd->rec - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == rd->rec) {
			rd->take(msg, rd);
			got = 0;
		}
	}
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("seed %llu: the child failed on its own (%s %d) — see the exit codes in test_crashsim.c",
		         (unsigned long long)rd->seed, WIFSIGNALED(status) ? "signal" : "exit",
		         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void workload_child(const char *root, int fd, const child_round *rd)
{
	child_main(root, fd, rd->seed, rd->crash_at, rd->recover_only);
}

static void take_event(const void *msg, child_round *rd)
{
	ev e;
	memcpy(&e, msg, sizeof e);
	model_event(rd->m, &e);
}

/* Runs the workload (or a recovery) in a child, feeding its events to the model. */
static void run_child(const char *root, model *m, uint64_t seed, uint64_t crash_at, int recover_only)
{
	child_round rd = {.child = workload_child, .take = take_event, .rec = sizeof(ev), .seed = seed,
	            .crash_at = crash_at, .recover_only = recover_only, .m = m};
	run_round(root, &rd);
}

static void cut(const char *root, uint64_t seed, pl_report *rep)
{
	char journal[4200], stash[4200], store[4200];
	snprintf(journal, sizeof journal, "%s/journal", root);
	snprintf(stash, sizeof stash, "%s/stash", root);
	snprintf(store, sizeof store, "%s/store", root);
	int err = pl_cut(journal, stash, store, seed, rep);
	if (err)
		fail_msg("seed %llu: the cut failed: %s", (unsigned long long)seed, strerror(err));
	if (getenv("HELIOS_CRASHSIM_VERBOSE"))
		printf("# seed %llu cut: %u-byte blocks, %llu files, kept %llu reverted %llu garbled %llu, %llu resized, "
		       "%llu names undone, index rolled back %d\n", (unsigned long long)seed, rep->block,
		       (unsigned long long)rep->files, (unsigned long long)rep->kept, (unsigned long long)rep->reverted,
		       (unsigned long long)rep->garbled, (unsigned long long)rep->resized,
		       (unsigned long long)rep->names_undone, rep->index_rolled_back);
}

static void check_name(uint64_t seed, const char *what, const char *name, const name_model *nm, int err,
                       const hl_id *got)
{
	char hex[HL_ID_HEX_LEN + 1] = "none";
	if (err != 0 && err != HL_NOTFOUND)
		fail_msg("seed %llu: %s %s: %s", (unsigned long long)seed, what, name, hl_strerror(err));
	for (int i = 0; i < nm->n; i++)
		if (err ? nm->none[i] : !nm->none[i] && hl_id_equal(&nm->v[i], got))
			return;
	if (!err)
		hl_id_format(got, hex);
	fail_msg("seed %llu: %s %s holds %s: neither its acknowledged value nor one attempted since",
	         (unsigned long long)seed, what, name, hex);
}

/* Checks the store against the model; *deltas: objects stored as deltas in it. */
static void check_store(const char *root, model *m, uint64_t seed, uint64_t *deltas)
{
	char store[4200];
	snprintf(store, sizeof store, "%s/store", root);
	hl_options o;
	sim_options(&o);
	hl_store *s;
	int err = hl_open(store, &o, &s);
	if (err)
		fail_msg("seed %llu: the store does not open after the cut: %s", (unsigned long long)seed, hl_strerror(err));
	for (size_t i = 0; i < m->n; i++) {
		obj_model *ob = &m->o[i];
		hl_buf *b = NULL;
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(&ob->id, hex);
		err = hl_get(s, &ob->id, &b);
		if (err == 0) {
			hl_id again;
			hl_hash(hl_buf_data(b), hl_buf_len(b), &again);
			hl_buf_unref(b);
			if (!hl_id_equal(&again, &ob->id))
				fail_msg("seed %llu: object %s: wrong bytes", (unsigned long long)seed, hex);
		} else if (err != HL_NOTFOUND || (ob->acked && !ob->may_vanish)) {
			char why[256] = "";
			hl_id base;
			if (hl_local_delta_base(s->local, &ob->id, &base) == 0) { /* which link failed */
				char bhex[HL_ID_HEX_LEN + 1];
				const obj_model *bm = NULL;
				hl_id_format(&base, bhex);
				for (size_t j = 0; j < m->n && !bm; j++)
					bm = hl_id_equal(&m->o[j].id, &base) ? &m->o[j] : NULL;
				int berr = hl_get(s, &base, &b);
				if (!berr)
					hl_buf_unref(b);
				snprintf(why, sizeof why, " (a delta against %.16s: %s; base %s%s)", bhex, hl_strerror(berr),
				         bm ? (bm->acked ? "acknowledged" : "attempted") : "not in the model",
				         bm && bm->may_vanish ? ", may vanish" : "");
			}
			fail_msg("seed %llu: %s object %s%s: %s%s", (unsigned long long)seed,
			         ob->acked ? "acknowledged" : "attempted", hex, ob->may_vanish ? " (may vanish)" : "",
			         hl_strerror(err), why);
		}
	}
	for (uint32_t k = 0; k < SLOTS; k++) {
		char name[16];
		hl_id id;
		ref_name(name, k);
		err = hl_ref_get(s, name, &id);
		check_name(seed, "ref", name, &m->ref[k], err, &id);
		hl_buf *b = NULL;
		if (!err && (err = hl_get(s, &id, &b)) != 0)
			fail_msg("seed %llu: ref %s names an object that cannot be read: %s", (unsigned long long)seed, name,
			         hl_strerror(err));
		hl_buf_unref(b);
		b = NULL;
		kv_key(name, k);
		err = hl_kv_get(s, "sim", name, strlen(name), &b);
		if (!err)
			hl_hash(hl_buf_data(b), hl_buf_len(b), &id);
		hl_buf_unref(b);
		check_name(seed, "kv key", name, &m->kv[k], err, &id);
	}
	hl_verify_report vr;
	err = hl_verify(s, 1, NULL, NULL, NULL, &vr);
	if (err || vr.corrupt || vr.quarantined || vr.io_errors || vr.index_damaged)
		fail_msg("seed %llu: verify: %s (corrupt %llu, quarantined %llu, I/O errors %llu, index damaged %d)",
		         (unsigned long long)seed, hl_strerror(err), (unsigned long long)vr.corrupt,
		         (unsigned long long)vr.quarantined, (unsigned long long)vr.io_errors, vr.index_damaged);
	uint64_t problems;
	if ((err = hl_check_index(s, &problems)) != 0)
		fail_msg("seed %llu: the index and the segment files disagree (%llu): %s", (unsigned long long)seed,
		         (unsigned long long)problems, hl_strerror(err));
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	if (st.objects + st.chunked != vr.objects) /* verify counts each large blob whole, too */
		fail_msg("seed %llu: the totals say %llu objects and %llu large blobs, the index holds %llu",
		         (unsigned long long)seed, (unsigned long long)st.objects, (unsigned long long)st.chunked,
		         (unsigned long long)vr.objects);
	*deltas = st.deltas;
	/* and it takes writes again */
	uint8_t data[777];
	uint64_t r = seed;
	tu_fill(&r, data, sizeof data);
	hl_id id;
	if ((err = hl_put(s, data, sizeof data, &id, NULL)) != 0 || (err = hl_ref_set(s, "sim/after", &id)) != 0)
		fail_msg("seed %llu: a write after recovery: %s", (unsigned long long)seed, hl_strerror(err));
	hl_close(s);
	o.read_only = 1;
	assert_int_equal(hl_open(store, &o, &s), 0);
	hl_id back;
	assert_int_equal(hl_ref_get(s, "sim/after", &back), 0);
	assert_true(hl_id_equal(&back, &id));
	hl_close(s);
}

static char *sim_root(void)
{
	const char *base = getenv("HELIOS_CRASHSIM_DIR");
	if (!base && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm"; /* syncs cost nothing there; the journal decides durability anyway */
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/helios-crashsim-XXXXXX", base ? base : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp"));
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

typedef struct totals {
	uint64_t seeds, acked, objects, deltas, recovery_crashes, files, kept, reverted, garbled, resized, names, rolled;
} totals;

static void add_cut(totals *t, const pl_report *r)
{
	t->files += r->files, t->kept += r->kept, t->reverted += r->reverted, t->garbled += r->garbled;
	t->resized += r->resized, t->names += r->names_undone, t->rolled += (uint64_t)r->index_rolled_back;
}

static void one_seed(uint64_t seed, uint64_t range, totals *t)
{
	char *root = sim_root();
	model m;
	memset(&m, 0, sizeof m);
	for (int k = 0; k < SLOTS; k++)
		name_init(&m.ref[k]), name_init(&m.kv[k]);
	uint64_t rng = seed * UINT64_C(0x2545F4914F6CDD1D) + 7;
	uint64_t crash_at = 1 + tu_rand(&rng) % range;
	run_child(root, &m, seed, crash_at, 0);
	pl_report rep;
	cut(root, seed, &rep);
	add_cut(t, &rep);
	if (tu_rand(&rng) % 4 == 0) { /* the power fails again while the store recovers */
		m.gc_active = 0;
		run_child(root, &m, seed + 1000003, 1 + tu_rand(&rng) % 400, 1);
		cut(root, seed + 1000003, &rep);
		add_cut(t, &rep);
		t->recovery_crashes++;
	}
	uint64_t deltas = 0;
	check_store(root, &m, seed, &deltas);
	t->deltas += deltas;
	for (size_t i = 0; i < m.n; i++)
		t->acked += m.o[i].acked;
	t->objects += m.n;
	t->seeds++;
	free(m.o);
	tu_rmrf(root);
	free(root);
}

static void crash_simulation(void **st)
{
	(void)st;
	totals t;
	memset(&t, 0, sizeof t);
	/* how many file calls a whole workload makes: crash points are drawn from a little more */
	char *root = sim_root();
	model m;
	memset(&m, 0, sizeof m);
	run_child(root, &m, 0, 0, 0);
	uint64_t range = m.calls + m.calls / 10 + 1;
	free(m.o);
	tu_rmrf(root);
	free(root);
	int only = tu_env_int("HELIOS_CRASHSIM_SEED", 0);
	int first = tu_env_int("HELIOS_CRASHSIM_FIRST", 1), seeds = tu_env_int("HELIOS_CRASHSIM_SEEDS", 300);
	printf("# crash simulation: %d seeds from %d; a workload makes ~%llu file calls\n", only ? 1 : seeds,
	       only ? only : first, (unsigned long long)m.calls);
	for (int i = 0; i < (only ? 1 : seeds); i++) {
		uint64_t seed = only ? (uint64_t)only : (uint64_t)(first + i);
		one_seed(seed, range, &t);
	}
	printf("# %llu seeds (%llu with a second cut during recovery): %llu objects attempted, %llu acknowledged, "
	       "all there (%llu deltas found stored); cuts: %llu files, blocks kept %llu / reverted %llu / garbled %llu, %llu sizes changed, "
	       "%llu names undone, index rolled back %llu times\n",
	       (unsigned long long)t.seeds, (unsigned long long)t.recovery_crashes, (unsigned long long)t.objects,
	       (unsigned long long)t.acked, (unsigned long long)t.deltas, (unsigned long long)t.files, (unsigned long long)t.kept,
	       (unsigned long long)t.reverted, (unsigned long long)t.garbled, (unsigned long long)t.resized,
	       (unsigned long long)t.names, (unsigned long long)t.rolled);
}

/* ---------- a batch across a segment roll ---------- */

/* The three objects of the roll test: a filler and a first object that end segment 1 with 8
 * bytes to spare (64 KiB segments, 64-byte headers; random bytes are stored raw), and an edit of
 * the first, which the store keeps as a delta against it: its record goes to segment 2. */
enum { ROLL_B = 30000, ROLL_A = 65536 - 64 - 2 * 64 - 8 - ROLL_B };

static void roll_objects(uint8_t *a, uint8_t *b, uint8_t *c)
{
	uint64_t rng = 42;
	tu_fill(&rng, a, ROLL_A);
	tu_fill(&rng, b, ROLL_B);
	memcpy(c, b, ROLL_B);
	tu_fill(&rng, c + ROLL_B / 2, 16);
}

/* The filler put alone, then the first object and its edit in one batch; reports the file calls
 * made before and after the batch, and dies at crash_at or at the end. */
static void roll_child(const char *root, int fd, const child_round *rd)
{
	hl_store *s = open_journaled(root, rd->crash_at);
	static uint8_t a[ROLL_A], b[ROLL_B], c[ROLL_B];
	roll_objects(a, b, c);
	hl_id ida;
	if (hl_put(s, a, sizeof a, &ida, NULL) != 0)
		fail_child(3);
	uint64_t calls[2] = {pl_calls(), 0};
	hl_put_item it[2] = {{.data = b, .len = sizeof b}, {.data = c, .len = sizeof c}};
	hl_hash(b, sizeof b, &it[0].id);
	hl_hash(c, sizeof c, &it[1].id);
	const hl_id *bases[2] = {&ida, NULL};
	if (hl_local_put_like(s->local, it, bases, 2) != 0)
		fail_child(4);
	calls[1] = pl_calls();
	if (write(fd, calls, sizeof calls) != sizeof calls)
		_exit(70);
	kill(getpid(), SIGKILL);
	_exit(71);
}

static void take_calls(const void *msg, child_round *rd)
{
	memcpy(rd->calls, msg, sizeof rd->calls);
}

/* Runs roll_child; the calls it reported (zeros when it died before reporting). */
static void run_roll_child(const char *root, uint64_t crash_at, uint64_t calls[2])
{
	child_round rd = {.child = roll_child, .take = take_calls, .rec = 2 * sizeof(uint64_t), .crash_at = crash_at};
	run_round(root, &rd);
	calls[0] = rd.calls[0], calls[1] = rd.calls[1];
}

/* A power cut at every file call of a batch whose records span a segment roll, each with several
 * cuts: the filler (acknowledged) reads back, and the first object and its delta each read back
 * whole or are absent — never a delta whose base the cut took (the group syncs the old segment
 * before it writes into the new one; without that, cuts kept segment 2's delta and lost the end
 * of segment 1). The layout is checked first: the delta is in segment 2, its base in 1. */
static void batch_across_roll(void **st)
{
	(void)st;
	static uint8_t a[ROLL_A], b[ROLL_B], c[ROLL_B];
	roll_objects(a, b, c);
	hl_id ida, idb, idc;
	hl_hash(a, sizeof a, &ida);
	hl_hash(b, sizeof b, &idb);
	hl_hash(c, sizeof c, &idc);
	hl_options o;
	sim_options(&o);
	char *root = sim_root(), store[4200];
	snprintf(store, sizeof store, "%s/store", root);
	uint64_t calls[2];
	run_roll_child(root, 0, calls);
	assert_true(calls[0] > 0 && calls[1] > calls[0]);
	pl_report rep;
	cut(root, 0, &rep);
	hl_store *s;
	hl_stat sb, sc;
	assert_int_equal(hl_open(store, &o, &s), 0);
	if (hl_stat_object(s, &idb, &sb) == 0 && hl_stat_object(s, &idc, &sc) == 0) { /* the cut may take them */
		assert_int_equal(sb.segment, 1);
		assert_int_equal(sc.segment, 2);
		assert_true(sc.flags & HL_STAT_DELTA);
	}
	hl_close(s);
	tu_rmrf(root);
	free(root);
	unsigned runs = 0, present = 0;
	for (uint64_t at = calls[0] + 1; at <= calls[1] + 1; at++)
		for (uint64_t seed = 1; seed <= 6; seed++, runs++) {
			root = sim_root();
			snprintf(store, sizeof store, "%s/store", root);
			uint64_t ignored[2];
			run_roll_child(root, at, ignored);
			cut(root, seed * 1000 + at, &rep);
			assert_int_equal(hl_open(store, &o, &s), 0);
			const hl_id *ids[3] = {&ida, &idb, &idc};
			const uint8_t *want[3] = {a, b, c};
			size_t len[3] = {sizeof a, sizeof b, sizeof c};
			for (int k = 0; k < 3; k++) {
				hl_buf *got;
				int err = hl_get(s, ids[k], &got);
				if (err == HL_NOTFOUND && k > 0)
					continue;
				if (err)
					fail_msg("crash at call %llu, cut %llu: object %d: %s", (unsigned long long)at,
					         (unsigned long long)(seed * 1000 + at), k, hl_strerror(err));
				assert_int_equal(hl_buf_len(got), len[k]);
				assert_memory_equal(hl_buf_data(got), want[k], len[k]);
				hl_buf_unref(got);
				present += k == 2;
			}
			hl_close(s);
			tu_rmrf(root);
			free(root);
		}
	printf("# batch across a segment roll: %u cuts at %llu file calls, the delta there after %u\n", runs,
	       (unsigned long long)(calls[1] - calls[0] + 1), present);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(batch_across_roll), cmocka_unit_test(crash_simulation)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
