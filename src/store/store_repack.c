/* store_repack.c — re-encoding records that compaction moves: a repack pass (gc --repack) encodes
 * each record not yet repacked at a higher zstd level and, when nothing depends on it, as a delta
 * against the most similar object it has seen (sketch.h); other moved records keep their level
 * and their base. Runs under the collection (gc_mu), so one pass at a time. Lock order:
 * store_int.h; the pass's own mutex is taken alone. */
#include "store/store_int.h"
#include "base/workers.h"

struct repack {
	int level;
	unsigned threads;
	pthread_mutex_t mu;
	hl_idmap named;    /* objects some delta names as its base (their depth must not grow): */
	hl_idmap rebased;  /* from the listing and from this pass's choices; rebased: given a new */
	uint32_t batch;    /* base in batch number `batch` (not a base for the rest of it) */
	hl_sketch_index like; /* the objects seen so far */
	uint64_t records, before, after;
};

/* Starts watching which objects deltas name (s->named, from the commits) before the listing v of
 * n entries is taken; the caller then calls hl_st_repack_scan with it. */
int hl_st_repack_begin(hl_local *s, int level, unsigned threads, repack **out)
{
	repack *rp = hl_calloc(1, sizeof *rp);
	hl_idmap *watch = hl_calloc(1, sizeof *watch);
	if (!rp || !watch || hl_sketch_index_init(&rp->like, SKETCH_RING_LOG, SKETCH_RING_LOG + 5)) {
		free(rp);
		free(watch);
		return ENOMEM;
	}
	rp->level = level;
	unsigned cpus = hl_cpus();
	rp->threads = threads ? threads : cpus > 1 ? cpus / 2 : 1; /* the rest keeps serving */
	pthread_mutex_init(&rp->mu, NULL);
	pthread_mutex_lock(&s->commit_mu);
	s->named = watch;
	s->named_lost = 0;
	pthread_mutex_unlock(&s->commit_mu);
	*out = rp;
	return 0;
}

/* Notes the base of every delta of the listing (taken after hl_st_repack_begin). */
int hl_st_repack_scan(hl_local *s, repack *rp, const hl_obj_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hl_id base;
		unsigned depth;
		if (!(v[i].e.flags & HL_REC_F_DELTA))
			continue;
		int err = hl_st_delta_base(s, &v[i].id, &v[i].e, &base, &depth);
		if (err == HL_CORRUPT || err == HL_NOTFOUND)
			continue; /* unreadable: not moved either; the scrubber reports it */
		if (err)
			return err;
		if (hl_idmap_put(&rp->named, &base, 1) < 0)
			return ENOMEM;
	}
	return 0;
}

void hl_st_repack_end(hl_local *s, repack *rp, hl_compact_report *rep)
{
	if (!rp)
		return;
	pthread_mutex_lock(&s->commit_mu);
	hl_idmap *watch = s->named;
	s->named = NULL;
	pthread_mutex_unlock(&s->commit_mu);
	if (watch)
		hl_idmap_free(watch);
	free(watch);
	if (rep) {
		rep->records_repacked = rp->records;
		rep->repack_bytes_before = rp->before;
		rep->repack_bytes_after = rp->after;
	}
	hl_idmap_free(&rp->named);
	hl_idmap_free(&rp->rebased);
	hl_sketch_index_free(&rp->like);
	pthread_mutex_destroy(&rp->mu);
	free(rp);
}

int hl_st_repack_wants(const repack *rp, const hl_idx_entry *e)
{
	return rp && (int)(e->marks & HL_IDX_MARK_LEVEL) < rp->level;
}

/* A new base for p (a record being repacked): like, the object seen before it most like it, when
 * nothing names p as a base and like got no new base in this batch. like is noted as named and p
 * as rebased (the encoding may still not pay: both only make later choices safer). */
static int choose_base(repack *rp, const prep *p, const hl_id *like)
{
	uint32_t batch;
	pthread_mutex_lock(&rp->mu);
	int ok = !hl_idmap_get(&rp->named, &p->item->id, NULL) &&
	         !(hl_idmap_get(&rp->rebased, like, &batch) && batch == rp->batch) &&
	         hl_idmap_put(&rp->named, like, 1) >= 0 && hl_idmap_put(&rp->rebased, &p->item->id, rp->batch) >= 0;
	pthread_mutex_unlock(&rp->mu);
	return ok;
}

typedef struct moves {
	hl_local *s;
	repack *rp;
	prep *p;
	const hl_idx_entry *was;
	size_t n;
	hl_sketch *sk;  /* the sketches of the records being repacked */
	hl_id *like;    /* the object most like each, seen before it (in batch order) */
	uint8_t *found; /* like[i] was found */
	atomic_size_t next;
} moves;

/* Encodes one moved record: a delta against its base again (or that base's base), at its level;
 * one being repacked at the pass's level, and against a similar object when that pays. */
static void encode_move(moves *m, size_t i)
{
	hl_local *s = m->s;
	prep *p = &m->p[i];
	const hl_idx_entry *was = &m->was[i];
	hl_id base;
	unsigned depth = 0;
	p->moving = was;
	p->marks = was->marks;
	p->level = (int)(was->marks & HL_IDX_MARK_LEVEL);
	int delta = (was->flags & HL_REC_F_DELTA) && hl_st_delta_base(s, &p->item->id, was, &base, &depth) == 0;
	if (!hl_st_repack_wants(m->rp, was)) {
		hl_st_compress_against(s, p, delta ? &base : NULL, NULL);
		return;
	}
	repack *rp = m->rp;
	p->level = rp->level;
	p->marks = (was->marks & ~HL_IDX_MARK_LEVEL) | (uint32_t)rp->level;
	int other = m->found && m->found[i] && choose_base(rp, p, &m->like[i]);
	hl_st_compress_against(s, p, delta ? &base : NULL, other ? &m->like[i] : NULL);
	p->rebased = (p->flags & HL_REC_F_DELTA) && p->depth > depth; /* (depth 0: it was whole) */
}

static void *sketch_worker(void *arg)
{
	moves *m = arg;
	for (size_t i; (i = atomic_fetch_add(&m->next, 1)) < m->n;) {
		m->sk[i].n = 0;
		if (hl_st_repack_wants(m->rp, &m->was[i]))
			(void)hl_sketch_of(m->p[i].item->data, m->p[i].item->len, &m->sk[i]);
	}
	return NULL;
}

void hl_st_repack_count(repack *rp, const hl_idx_entry *was, const prep *p)
{
	if (!hl_st_repack_wants(rp, was))
		return;
	rp->records++;
	rp->before += HL_REC_HDR_LEN + was->stored_len;
	rp->after += HL_REC_HDR_LEN + p->payload_len;
}

static void *moves_worker(void *arg)
{
	moves *m = arg;
	for (size_t i; (i = atomic_fetch_add(&m->next, 1)) < m->n;)
		encode_move(m, i);
	return NULL;
}

void hl_st_encode_moves(hl_local *s, repack *rp, prep *p, const hl_idx_entry *was, size_t n)
{
	moves m = {.s = s, .rp = rp, .p = p, .was = was, .n = n};
	unsigned threads = 1;
	int repacking = 0;
	for (size_t i = 0; rp && i < n; i++) {
		repacking |= hl_st_repack_wants(rp, &was[i]);
		if (repacking || (was[i].marks & HL_IDX_MARK_LEVEL))
			threads = rp->threads;
	}
	if (rp) {
		pthread_mutex_lock(&rp->mu);
		rp->batch++;
		pthread_mutex_unlock(&rp->mu);
	}
	int parallel = threads > 1 && n > 1;
	if (repacking) {
		m.found = hl_calloc(n ? n : 1, 1);
		/* Each record's likest object among those seen before it, in batch order: sketched in
		 * parallel, looked up and added one after another (encoders that looked up as they
		 * encoded missed a record encoded at the same moment: an original and its edit encoded
		 * at once both stayed whole). Out of memory: no new bases in this batch. */
		m.sk = hl_malloc(n * sizeof(*m.sk));
		m.like = hl_malloc(n * sizeof(*m.like));
		if (m.sk && m.like && m.found) {
			if (parallel)
				hl_run_workers(sketch_worker, &m, threads);
			else
				sketch_worker(&m);
			atomic_store(&m.next, 0);
			for (size_t i = 0; i < n; i++) {
				unsigned votes;
				if (!m.sk[i].n)
					continue;
				m.found[i] = hl_sketch_index_find(&rp->like, &m.sk[i], &p[i].item->id, &m.like[i], &votes) == 0;
				hl_sketch_index_add(&rp->like, &m.sk[i], &p[i].item->id);
			}
		}
	}
	if (!m.sk || !m.like) { /* (then like[] is never read) */
		free(m.found);
		m.found = NULL;
	}
	if (parallel)
		hl_run_workers(moves_worker, &m, threads);
	else
		moves_worker(&m);
	free(m.sk);
	free(m.like);
	free(m.found);
}
