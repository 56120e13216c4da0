/* l2.c — the L2 disk cache of l2.h: a ring of regions in one file, an in-memory index (a hash
 * table, and a list of entries per region so a region is evicted in time proportional to its own
 * entries), LZ4, and a writer thread: a full region image is handed to it (double buffering) so
 * puts never wait on the disk, and the partly filled region is written every second so a restart
 * keeps what was cached just before. */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/endian.h"
#include "base/grow.h"
#include "base/io.h"
#include "cache/l2.h"
#include "base/alloc.h"

#define RHDR 64u
#define EHDR 56u
#define F_LZ4 1u

#define PARTIAL_FLUSH_NS 1000000000ull

typedef struct ent {
	hl_id id;
	uint32_t region, off, stored, raw;
	uint8_t flags, hot;
	struct ent *next;           /* hash chain */
	struct ent *rnext, *rprev;  /* the region's list */
} ent;

struct hl_l2 {
	int fd;
	uint32_t nreg, rsize, lz4_min;
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* the writer's work and its completion */
	uint8_t *buf;       /* the image of the region being filled */
	uint32_t cur, used; /* its number and bytes used (header included) */
	uint64_t seq;       /* its sequence number */
	uint32_t written;   /* bytes of the current image already on disk */
	uint8_t *wbuf;      /* the image the writer is writing (or a spare) */
	uint32_t wreg, wused;
	int wbusy;          /* wbuf holds an image not yet written */
	int wfull;          /* ... a full one, of a region no longer current */
	int werr;           /* the last background write failed (the next flush says so) */
	int stop, writer_running;
	pthread_t writer;
	ent **tab;
	ent **rhead;        /* per region */
	size_t mask, n;
	uint64_t bytes;     /* stored bytes of indexed entries */
	hl_l2_stats st;
};

static uint32_t check4(const uint8_t *p, size_t n)
{
	hl_id h;
	hl_hash(p, n, &h);
	return hl_le32(h.b);
}

static size_t slot(const hl_l2 *c, const hl_id *id)
{
	return (size_t)hl_le64(id->b) & c->mask;
}

static ent *find(hl_l2 *c, const hl_id *id)
{
	for (ent *e = c->tab[slot(c, id)]; e; e = e->next)
		if (hl_id_equal(&e->id, id))
			return e;
	return NULL;
}

/* Takes x out of the hash chain and its region's list (not freed). */
static void detach(hl_l2 *c, ent *x)
{
	ent **pp = &c->tab[slot(c, &x->id)];
	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	if (x->rprev)
		x->rprev->rnext = x->rnext;
	else
		c->rhead[x->region] = x->rnext;
	if (x->rnext)
		x->rnext->rprev = x->rprev;
	c->n--;
	c->bytes -= x->stored;
}

static void unlink_ent(hl_l2 *c, ent *x)
{
	detach(c, x);
	free(x);
}

static int add_ent(hl_l2 *c, const hl_id *id, uint32_t region, uint32_t off, uint32_t stored,
                   uint32_t raw, uint8_t flags)
{
	ent *old = find(c, id);
	if (old)
		unlink_ent(c, old);
	ent *e = hl_calloc(1, sizeof(*e));
	if (!e)
		return ENOMEM;
	*e = (ent){*id, region, off, stored, raw, flags, 0, NULL, NULL, NULL};
	size_t s = slot(c, id);
	e->next = c->tab[s];
	c->tab[s] = e;
	e->rnext = c->rhead[region];
	if (e->rnext)
		e->rnext->rprev = e;
	c->rhead[region] = e;
	c->n++;
	c->bytes += stored;
	return 0;
}

static uint32_t align8(uint32_t x)
{
	return (x + 7u) & ~7u;
}

/* Appends an entry to the region image (the caller checked it fits). */
static int append(hl_l2 *c, const hl_id *id, const uint8_t *data, uint32_t stored, uint32_t raw,
                  uint8_t flags)
{
	uint8_t *h = c->buf + c->used;
	memset(h, 0, EHDR);
	memcpy(h, "HL2E", 4);
	h[4] = flags;
	hl_put_le32(h + 8, raw);
	hl_put_le32(h + 12, stored);
	memcpy(h + 16, id->b, HL_ID_LEN);
	hl_put_le32(h + 52, check4(h, 52));
	memcpy(h + EHDR, data, stored);
	int err = add_ent(c, id, c->cur, c->used, stored, raw, flags);
	if (!err)
		c->used += align8(EHDR + stored);
	return err;
}

/* Fills the region header of an image. */
static void seal(uint8_t *img, uint64_t seq, uint32_t used)
{
	memset(img, 0, RHDR);
	memcpy(img, "HL2R", 4);
	img[4] = 1;
	hl_put_le64(img + 8, seq);
	hl_put_le32(img + 16, used);
	hl_put_le32(img + 60, check4(img, 60));
}

/* Waits (the lock held) until the writer has no image in hand. */
static void wait_writer(hl_l2 *c)
{
	while (c->wbusy)
		pthread_cond_wait(&c->cv, &c->mu);
}

/* Writes the current image now (the lock held): a flush or close. */
static int write_current(hl_l2 *c)
{
	wait_writer(c);
	seal(c->buf, c->seq, c->used);
	int err = hl_io_pwrite_full(c->fd, c->buf, c->used, (uint64_t)c->cur * c->rsize);
	if (!err)
		c->written = c->used, c->st.flushes++;
	return err;
}

/* The stored bytes of an entry on disk (header checked), into a new allocation. */
static uint8_t *read_stored(hl_l2 *c, const ent *e)
{
	uint8_t *b = hl_malloc(EHDR + e->stored);
	if (!b)
		return NULL;
	if (hl_io_pread_full(c->fd, b, EHDR + e->stored, (uint64_t)e->region * c->rsize + e->off) ||
	    memcmp(b, "HL2E", 4) || hl_le32(b + 52) != check4(b, 52) || memcmp(b + 16, e->id.b, HL_ID_LEN) ||
	    hl_le32(b + 12) != e->stored) {
		free(b);
		return NULL;
	}
	return b;
}

/* Removes region r's entries from the index; with keep_hot, those read since they were written
 * are returned as a list (for reinsertion) instead of freed. */
static ent *drop_region(hl_l2 *c, uint32_t r, int keep_hot)
{
	ent *keep = NULL;
	while (c->rhead[r]) {
		ent *e = c->rhead[r];
		detach(c, e);
		if (keep_hot && e->hot) { /* second chance */
			e->next = keep;
			keep = e;
		} else {
			c->st.evictions += keep_hot;
			free(e);
		}
	}
	return keep;
}

/* The region being filled goes to the writer (its image swapped with the spare: puts go on at
 * once); the oldest becomes the one being filled: its entries leave the index, except those read
 * since they were written, which move into it. */
static int rotate(hl_l2 *c)
{
	wait_writer(c); /* the previous full image is on disk (back-pressure, rarely felt) */
	if (c->werr) {
		int err = c->werr;
		c->werr = 0;
		return err;
	}
	seal(c->buf, c->seq, c->used);
	uint8_t *full = c->buf;
	c->buf = c->wbuf;
	c->wbuf = full;
	c->wreg = c->cur, c->wused = c->used, c->wbusy = 1, c->wfull = 1;
	pthread_cond_broadcast(&c->cv);
	uint32_t next = (c->cur + 1) % c->nreg;
	ent *keep = drop_region(c, next, 1);
	c->cur = next;
	c->seq++;
	c->used = RHDR;
	c->written = 0;
	while (keep) {
		ent *e = keep;
		keep = e->next;
		uint8_t *b = read_stored(c, e); /* still on disk: the region is overwritten later */
		if (b && c->used + align8(EHDR + e->stored) <= c->rsize && !find(c, &e->id) &&
		    append(c, &e->id, b + EHDR, e->stored, e->raw, e->flags) == 0)
			c->st.reinserted++;
		else
			c->st.evictions++;
		free(b);
		free(e);
	}
	return 0;
}

/* The writer: full images as they come, and every second the current one when it grew. */
static void *writer_main(void *arg)
{
	hl_l2 *c = arg;
	pthread_setname_np(pthread_self(), "hl-l2-writer");
	pthread_mutex_lock(&c->mu);
	while (!c->stop || c->wbusy) {
		if (!c->wbusy) {
			struct timespec ts = hl_deadline_after(PARTIAL_FLUSH_NS);
			if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT && !c->wbusy && !c->stop &&
			    c->used > RHDR && c->used > c->written) { /* a copy of the partly filled region */
				memcpy(c->wbuf, c->buf, c->used);
				seal(c->wbuf, c->seq, c->used);
				c->wreg = c->cur, c->wused = c->used, c->wbusy = 1, c->wfull = 0;
			}
			continue;
		}
		uint8_t *img = c->wbuf;
		uint32_t reg = c->wreg, used = c->wused;
		pthread_mutex_unlock(&c->mu);
		int err = hl_io_pwrite_full(c->fd, img, used, (uint64_t)reg * c->rsize);
		pthread_mutex_lock(&c->mu);
		if (err)
			c->werr = err;
		else
			c->st.flushes++;
		if (!err && !c->wfull && reg == c->cur && used > c->written)
			c->written = used;
		c->wbusy = 0;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- open: the index from the region headers ---- */

typedef struct reg {
	uint32_t no, used;
	uint64_t seq;
} reg;

static int reg_cmp(const void *x, const void *y)
{
	const reg *a = x, *b = y;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static void load_region(hl_l2 *c, const reg *r)
{
	uint8_t *img = hl_malloc(r->used);
	if (!img || hl_io_pread_full(c->fd, img, r->used, (uint64_t)r->no * c->rsize)) {
		free(img);
		return;
	}
	for (uint32_t off = RHDR; off + EHDR <= r->used;) {
		const uint8_t *h = img + off;
		uint32_t stored = hl_le32(h + 12);
		if (memcmp(h, "HL2E", 4) || hl_le32(h + 52) != check4(h, 52) || stored > r->used - off - EHDR)
			break; /* a torn or foreign tail: the rest of the region is not trusted */
		hl_id id;
		memcpy(id.b, h + 16, HL_ID_LEN);
		if (add_ent(c, &id, r->no, off, stored, hl_le32(h + 8), h[4]))
			break;
		off += align8(EHDR + stored);
	}
	free(img);
}

int hl_l2_open(const char *path, uint64_t bytes, uint32_t region_size, uint32_t lz4_min, hl_l2 **out)
{
	if (!path || !out || region_size < HL_L2_REGION_MIN || region_size > HL_L2_REGION_MAX ||
	    region_size % HL_L2_REGION_ALIGN ||
	    bytes / region_size < 2 || bytes / region_size > (1u << 20))
		return HL_INVALID;
	hl_l2 *c = hl_calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->nreg = (uint32_t)(bytes / region_size);
	c->rsize = region_size;
	c->lz4_min = lz4_min;
	size_t buckets = 1024;
	while (buckets < (size_t)c->nreg * (region_size / 4096))
		buckets *= 2;
	c->mask = buckets - 1;
	c->tab = hl_calloc(buckets, sizeof(ent *));
	c->rhead = hl_calloc(c->nreg, sizeof(ent *));
	c->buf = hl_malloc(region_size);
	c->wbuf = hl_malloc(region_size);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->fd = -1;
	uint64_t size = 0, want = (uint64_t)c->nreg * region_size;
	int err = !c->tab || !c->rhead || !c->buf || !c->wbuf ? ENOMEM : hl_io_open(path, O_RDWR | O_CREAT, 0644, &c->fd);
	if (err)
		c->fd = -1;
	if (!err && (err = hl_io_size(c->fd, &size)) == 0 && size < want)
		err = hl_io_truncate(c->fd, want);
	reg *regs = err ? NULL : hl_calloc(c->nreg, sizeof(*regs));
	uint32_t nvalid = 0;
	if (!err && !regs)
		err = ENOMEM;
	for (uint32_t i = 0; !err && i < c->nreg; i++) {
		uint8_t h[RHDR];
		if (hl_io_pread_full(c->fd, h, RHDR, (uint64_t)i * region_size))
			continue;
		uint64_t seq = hl_le64(h + 8);
		uint32_t used = hl_le32(h + 16);
		if (!memcmp(h, "HL2R", 4) && h[4] == 1 && hl_le32(h + 60) == check4(h, 60) && seq &&
		    used >= RHDR && used <= region_size)
			regs[nvalid++] = (reg){i, used, seq};
	}
	if (!err) {
		qsort(regs, nvalid, sizeof(*regs), reg_cmp);
		for (uint32_t i = 0; i < nvalid; i++) /* oldest first: a newer copy of an id wins */
			load_region(c, &regs[i]);
		/* the region after the newest is the oldest: it is filled next, its entries leave */
		c->cur = nvalid ? (regs[nvalid - 1].no + 1) % c->nreg : 0;
		c->seq = nvalid ? regs[nvalid - 1].seq + 1 : 1;
		c->used = RHDR;
		drop_region(c, c->cur, 0);
		if (pthread_create(&c->writer, NULL, writer_main, c))
			err = EAGAIN;
		else
			c->writer_running = 1;
	}
	free(regs);
	if (err) {
		hl_l2_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void hl_l2_close(hl_l2 *c)
{
	if (!c)
		return;
	if (c->writer_running) { /* it writes what it holds first */
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->writer, NULL);
	}
	if (c->fd >= 0 && c->buf && c->used > RHDR && c->used > c->written) {
		pthread_mutex_lock(&c->mu);
		write_current(c);
		pthread_mutex_unlock(&c->mu);
	}
	for (size_t i = 0; c->tab && i <= c->mask; i++)
		for (ent *e = c->tab[i]; e;) {
			ent *n = e->next;
			free(e);
			e = n;
		}
	if (c->fd >= 0)
		hl_io_close(c->fd);
	free(c->tab);
	free(c->rhead);
	free(c->buf);
	free(c->wbuf);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

int hl_l2_put(hl_l2 *c, const hl_id *id, const void *data, size_t len)
{
	if (!c || !id || (!data && len))
		return HL_INVALID;
	if (len > c->rsize - RHDR - EHDR)
		return HL_TOOBIG;
	uint8_t *z = NULL;
	const uint8_t *stored = data;
	uint32_t slen = (uint32_t)len;
	uint8_t flags = 0;
	if (len >= c->lz4_min && len <= LZ4_MAX_INPUT_SIZE) {
		int bound = LZ4_compressBound((int)len);
		if ((z = hl_malloc((size_t)bound)) != NULL) {
			int n = LZ4_compress_default(data, (char *)z, (int)len, bound);
			if (n > 0 && (size_t)n < len - len / 16)
				stored = z, slen = (uint32_t)n, flags = F_LZ4;
		}
	}
	pthread_mutex_lock(&c->mu);
	int err = 0;
	if (!find(c, id)) {
		if (c->used + align8(EHDR + slen) > c->rsize)
			err = rotate(c);
		if (!err)
			err = append(c, id, stored, slen, (uint32_t)len, flags);
		c->st.inserts += !err;
	}
	pthread_mutex_unlock(&c->mu);
	free(z);
	return err;
}

int hl_l2_get(hl_l2 *c, const hl_id *id, hl_buf **out)
{
	if (!c || !id || !out)
		return HL_INVALID;
	pthread_mutex_lock(&c->mu);
	ent *e = find(c, id);
	if (!e) {
		c->st.misses++;
		pthread_mutex_unlock(&c->mu);
		return HL_NOTFOUND;
	}
	/* the stored bytes copied under the lock (a region cannot be reused meanwhile); decompressed
	 * and verified outside it */
	ent at = *e;
	uint8_t *img;
	if (e->region == c->cur || (c->wbusy && c->wfull && e->region == c->wreg)) {
		const uint8_t *src = (e->region == c->cur ? c->buf : c->wbuf) + e->off;
		if ((img = hl_malloc(EHDR + e->stored)) != NULL)
			memcpy(img, src, EHDR + e->stored);
	} else {
		img = read_stored(c, e);
	}
	pthread_mutex_unlock(&c->mu);
	hl_buf *b = img ? hl_buf_alloc(at.raw) : NULL;
	int ok = 0;
	if (b && at.flags & F_LZ4)
		ok = LZ4_decompress_safe((const char *)img + EHDR, (char *)hl_buf_wdata(b), (int)at.stored, (int)at.raw) == (int)at.raw;
	else if (b && at.stored == at.raw)
		memcpy(hl_buf_wdata(b), img + EHDR, at.raw), ok = 1;
	free(img);
	hl_id got;
	if (ok) {
		hl_hash(hl_buf_data(b), hl_buf_len(b), &got);
		ok = hl_id_equal(&got, id);
	}
	pthread_mutex_lock(&c->mu);
	e = find(c, id);
	int same = e && e->region == at.region && e->off == at.off;
	if (ok) {
		if (same)
			e->hot = 1;
		c->st.hits++;
	} else { /* unreadable or corrupt: a miss, and forgotten */
		c->st.misses++;
		c->st.corrupt++;
		if (same)
			unlink_ent(c, e);
	}
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		hl_buf_unref(b);
		return HL_NOTFOUND;
	}
	*out = b;
	return 0;
}

int hl_l2_has(hl_l2 *c, const hl_id *id)
{
	pthread_mutex_lock(&c->mu);
	int found = find(c, id) != NULL;
	pthread_mutex_unlock(&c->mu);
	return found ? 0 : HL_NOTFOUND;
}

int hl_l2_flush(hl_l2 *c)
{
	pthread_mutex_lock(&c->mu);
	int err = c->werr;
	c->werr = 0;
	if (!err && c->used > RHDR)
		err = write_current(c);
	pthread_mutex_unlock(&c->mu);
	return err;
}

typedef struct recent {
	hl_id id;
	uint32_t age, off, raw;
} recent;

static int newest_first(const void *a, const void *b)
{
	const recent *x = a, *y = b;
	if (x->age != y->age)
		return x->age < y->age ? -1 : 1;
	return x->off > y->off ? -1 : x->off < y->off;
}

int hl_l2_recent(hl_l2 *c, uint64_t max_bytes, hl_id **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&c->mu);
	/* only the regions that can hold max_bytes are looked at: ages 0..span-1 (0: being filled) */
	uint64_t span64 = max_bytes / c->rsize + 2;
	uint32_t span = span64 < c->nreg ? (uint32_t)span64 : c->nreg;
	size_t cap = 0, k = 0;
	recent *r = NULL;
	int err = 0;
	for (uint32_t age = 0; age < span && !err; age++) /* each region's own entries */
		for (ent *e = c->rhead[(c->cur + c->nreg - age) % c->nreg]; e; e = e->rnext) {
			recent *g = hl_grow(r, k, &cap, sizeof(*r), 1024);
			if (!g) {
				err = ENOMEM;
				break;
			}
			r = g;
			r[k++] = (recent){e->id, age, e->off, e->raw};
		}
	pthread_mutex_unlock(&c->mu);
	if (err) {
		free(r);
		return err;
	}
	if (k)
		qsort(r, k, sizeof(*r), newest_first);
	uint64_t bytes = 0;
	size_t m = 0;
	while (m < k && bytes + r[m].raw <= max_bytes)
		bytes += r[m++].raw;
	hl_id *out = hl_malloc((m ? m : 1) * sizeof(*out));
	if (!out) {
		free(r);
		return ENOMEM;
	}
	for (size_t i = 0; i < m; i++)
		out[i] = r[i].id;
	free(r);
	*ids = out;
	*n = m;
	return 0;
}

void hl_l2_stats_get(hl_l2 *c, hl_l2_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->entries = c->n;
	out->bytes = c->bytes;
	out->capacity = (uint64_t)c->nreg * c->rsize;
	pthread_mutex_unlock(&c->mu);
}
