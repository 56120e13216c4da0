/* l2.c — the L2 disk cache of l2.h: a ring of regions in one file, an in-memory index, LZ4. */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/buf.h"
#include "base/endian.h"
#include "base/io.h"
#include "cache/l2.h"

#define RHDR 64u
#define EHDR 56u
#define F_LZ4 1u

typedef struct ent {
	hl_id id;
	uint32_t region, off, stored, raw;
	uint8_t flags, hot;
	struct ent *next;
} ent;

struct hl_l2 {
	int fd;
	uint32_t nreg, rsize, lz4_min;
	pthread_mutex_t mu;
	uint8_t *buf;       /* the image of the region being filled */
	uint32_t cur, used; /* its number and bytes used (header included) */
	uint64_t seq;       /* its sequence number */
	ent **tab;
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

static void unlink_ent(hl_l2 *c, ent *x)
{
	ent **pp = &c->tab[slot(c, &x->id)];
	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	c->n--;
	c->bytes -= x->stored;
	free(x);
}

static int add_ent(hl_l2 *c, const hl_id *id, uint32_t region, uint32_t off, uint32_t stored,
                   uint32_t raw, uint8_t flags)
{
	ent *old = find(c, id);
	if (old)
		unlink_ent(c, old);
	ent *e = calloc(1, sizeof(*e));
	if (!e)
		return ENOMEM;
	*e = (ent){*id, region, off, stored, raw, flags, 0, NULL};
	size_t s = slot(c, id);
	e->next = c->tab[s];
	c->tab[s] = e;
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

static int write_region(hl_l2 *c)
{
	uint8_t *h = c->buf;
	memset(h, 0, RHDR);
	memcpy(h, "HL2R", 4);
	h[4] = 1;
	hl_put_le64(h + 8, c->seq);
	hl_put_le32(h + 16, c->used);
	hl_put_le32(h + 60, check4(h, 60));
	int err = hl_io_pwrite_full(c->fd, c->buf, c->used, (uint64_t)c->cur * c->rsize);
	c->st.flushes += !err;
	return err;
}

/* The stored bytes of an entry on disk (header checked), into a new allocation. */
static uint8_t *read_stored(hl_l2 *c, const ent *e)
{
	uint8_t *b = malloc(EHDR + e->stored);
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
	for (size_t i = 0; i <= c->mask; i++) {
		for (ent **pp = &c->tab[i]; *pp;) {
			ent *e = *pp;
			if (e->region != r) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			c->n--;
			c->bytes -= e->stored;
			if (keep_hot && e->hot) { /* second chance */
				e->next = keep;
				keep = e;
			} else {
				c->st.evictions += keep_hot;
				free(e);
			}
		}
	}
	return keep;
}

/* The region being filled is written; the oldest becomes the one being filled: its entries leave
 * the index, except those read since they were written, which move into it. */
static int rotate(hl_l2 *c)
{
	int err = write_region(c);
	if (err)
		return err;
	uint32_t next = (c->cur + 1) % c->nreg;
	ent *keep = drop_region(c, next, 1);
	c->cur = next;
	c->seq++;
	c->used = RHDR;
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
	uint8_t *img = malloc(r->used);
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
	if (!path || !out || region_size < (64u << 10) || region_size > (1u << 30) || region_size % 4096 ||
	    bytes / region_size < 2 || bytes / region_size > (1u << 20))
		return HL_INVALID;
	hl_l2 *c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->nreg = (uint32_t)(bytes / region_size);
	c->rsize = region_size;
	c->lz4_min = lz4_min;
	size_t buckets = 1024;
	while (buckets < (size_t)c->nreg * (region_size / 4096))
		buckets *= 2;
	c->mask = buckets - 1;
	c->tab = calloc(buckets, sizeof(ent *));
	c->buf = malloc(region_size);
	pthread_mutex_init(&c->mu, NULL);
	c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct stat sb;
	int err = !c->tab || !c->buf ? ENOMEM : c->fd < 0 ? errno : 0;
	if (!err && fstat(c->fd, &sb) == 0 && (uint64_t)sb.st_size < (uint64_t)c->nreg * region_size &&
	    ftruncate(c->fd, (off_t)((uint64_t)c->nreg * region_size)))
		err = errno;
	reg *regs = err ? NULL : calloc(c->nreg, sizeof(*regs));
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
	if (c->fd >= 0 && c->buf && c->used > RHDR)
		write_region(c);
	for (size_t i = 0; c->tab && i <= c->mask; i++)
		for (ent *e = c->tab[i]; e;) {
			ent *n = e->next;
			free(e);
			e = n;
		}
	if (c->fd >= 0)
		close(c->fd);
	free(c->tab);
	free(c->buf);
	pthread_mutex_destroy(&c->mu);
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
		if ((z = malloc((size_t)bound)) != NULL) {
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
	uint8_t *img = NULL;
	const uint8_t *src;
	if (e->region == c->cur) {
		src = c->buf + e->off + EHDR; /* still in memory */
	} else {
		img = read_stored(c, e);
		src = img ? img + EHDR : NULL;
	}
	hl_buf *b = src ? hl_buf_alloc(e->raw) : NULL;
	int ok = 0;
	if (b && e->flags & F_LZ4)
		ok = LZ4_decompress_safe((const char *)src, (char *)hl_buf_wdata(b), (int)e->stored, (int)e->raw) == (int)e->raw;
	else if (b && e->stored == e->raw)
		memcpy(hl_buf_wdata(b), src, e->raw), ok = 1;
	hl_id got;
	if (ok) {
		hl_hash(hl_buf_data(b), hl_buf_len(b), &got);
		ok = hl_id_equal(&got, id);
	}
	if (ok) {
		e->hot = 1;
		c->st.hits++;
	} else { /* unreadable or corrupt: a miss, and forgotten */
		c->st.misses++;
		c->st.corrupt++;
		unlink_ent(c, e);
	}
	pthread_mutex_unlock(&c->mu);
	free(img);
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
	int err = c->used > RHDR ? write_region(c) : 0;
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
	for (size_t i = 0; i <= c->mask && !err; i++)
		for (ent *e = c->tab[i]; e && !err; e = e->next) {
			uint32_t age = (c->cur + c->nreg - e->region) % c->nreg;
			if (age >= span)
				continue;
			if (k == cap) {
				size_t nc = cap ? cap * 2 : 1024;
				recent *g = realloc(r, nc * sizeof(*r));
				if (!g) {
					err = ENOMEM;
					break;
				}
				r = g, cap = nc;
			}
			r[k++] = (recent){e->id, age, e->off, e->raw};
		}
	pthread_mutex_unlock(&c->mu);
	if (err) {
		free(r);
		return err;
	}
	qsort(r, k, sizeof(*r), newest_first);
	uint64_t bytes = 0;
	size_t m = 0;
	while (m < k && bytes + r[m].raw <= max_bytes)
		bytes += r[m++].raw;
	hl_id *out = malloc((m ? m : 1) * sizeof(*out));
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
