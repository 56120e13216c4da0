/* store_scan.c — the scrubber's walk: live records verified in segment and offset order, read a
 * window of many records at a time (one pread), so a pass reads the disk sequentially and costs
 * one system call per window instead of one per object. Records no index entry points at
 * (superseded, collected, quarantined) are skipped; a damaged header sends the walk to the next
 * record magic and the records the index places in between are checked one by one.
 * The kernel's readahead reads ahead of the walk. Measured and dropped: mapping the segments (on a
 * virtual machine the page faults cost 4× the hashing), a helper thread reading the next window
 * (slower on 2 vCPUs), POSIX_FADV_WILLNEED ahead of each window (cold passes slower: it blocks
 * while it queues) and O_DIRECT (half the buffered rate one request at a time). */
#include "store/store_int.h"

#define WINDOW (UINT64_C(512) << 10) /* bytes read at once (more for a larger record): the window
                                        * and the hashing stay in a core's L2 cache */
#define INDEX_PREFETCH_RATIO 32                  /* index bytes per pass bytes, at most */
#define INDEX_PREFETCH_MAX (UINT64_C(256) << 20) /* and no more than this */
#define KEEP_MAX (UINT64_C(4) << 20)  /* buffers larger than this are freed after a scan */

typedef struct scan {
	hl_local *s;
	uint32_t seg;
	int fd;
	uint64_t size;                /* the segment's size when its scan began (or the pass's end) */
	uint8_t *win;                 /* the file's bytes [win_off, win_off + win_len), read at once */
	uint64_t win_off, win_len;
	size_t win_cap;
	uint8_t hdr[HL_REC_HDR_LEN];  /* the record at `off` */
	uint64_t off;
	hl_rec_hdr h;
	hl_idx_entry e;
	uint8_t *scratch;             /* decompressed bytes */
	size_t cap;
} scan;

static const uint8_t *at(const scan *c, uint64_t off) { return c->win + (off - c->win_off); }

/* Reads [from, from + len) of the segment (clipped to its size) into the window: one pread for
 * many records. Bytes of that range the window already holds (the start of a record the last
 * window cut) are moved to its front rather than read again. */
static int read_window(scan *c, uint64_t from, uint64_t len)
{
	uint64_t end = from + len > c->size ? c->size : from + len, kept = 0;
	if (from >= c->win_off && from < c->win_off + c->win_len) {
		kept = c->win_off + c->win_len - from;
		if (kept > end - from)
			kept = end - from;
	}
	if (end - from > c->win_cap) { /* page-aligned: the kernel copies faster to an aligned buffer */
		size_t cap = (size_t)((end - from + 4095) & ~UINT64_C(4095));
		uint8_t *b = hl_aligned_alloc(4096, cap);
		if (!b)
			return ENOMEM;
		if (kept)
			memcpy(b, at(c, from), kept);
		free(c->win);
		c->win = b;
		c->win_cap = cap;
	} else if (kept) {
		memmove(c->win, at(c, from), kept);
	}
	c->win_off = from;
	c->win_len = 0;
	int err = hl_io_pread_full(c->fd, c->win + kept, end - from - kept, from + kept);
	if (err == HL_IO_SHORT)
		err = EIO; /* the file shrank under the scan */
	if (!err)
		c->win_len = end - from;
	return err;
}

/* Whether the window covers [from, from + len), reading one there if not. */
static int cover(scan *c, uint64_t from, uint64_t len)
{
	if (from >= c->win_off && from + len <= c->win_off + c->win_len)
		return 0;
	return read_window(c, from, len > WINDOW ? len : WINDOW);
}

/* The payload of the record at off (header in c->h) hashed, decompressed first when stored with
 * zstd: 0 or HL_CORRUPT. */
static int verify_payload(scan *c, uint64_t off)
{
	const uint8_t *p = at(c, off + HL_REC_HDR_LEN), *bytes = p;
	if (c->h.flags & HL_REC_F_ZSTD) {
		ZSTD_DCtx *d = hl_st_thread_dctx();
		if (!d)
			return ENOMEM;
		size_t r = ZSTD_decompressDCtx(d, c->scratch, c->h.raw_len, p, c->h.stored_len);
		if (ZSTD_isError(r) || r != c->h.raw_len)
			return HL_CORRUPT;
		bytes = c->scratch;
	}
	hl_id got;
	hl_hash(bytes, c->h.raw_len, &got);
	return hl_id_equal(&got, &c->h.id) ? 0 : HL_CORRUPT;
}

/* Every live record in [from, to) of segment seg, checked one by one through the index (a
 * damaged header hides which records stand in a stretch: the index knows). Costs a walk of the
 * whole index, which only damage makes necessary. */
static int check_stretch(scan *c, uint64_t from, uint64_t to, hl_scan_fn fn, void *ctx, uint64_t *done)
{
	hl_obj_entry *all;
	size_t n;
	uint64_t bytes;
	int damaged = 0;
	int err = hl_st_snapshot_entries(c->s, c->s->ix.obj, &all, &n, &bytes, &damaged);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		const hl_idx_entry *e = &all[i].e;
		if (e->segment != c->seg || e->offset < from || e->offset >= to)
			continue;
		int st = hl_local_check(c->s, &all[i].id, &c->scratch, &c->cap); /* quarantines */
		if (st == HL_NOTFOUND)
			continue;
		*done += HL_REC_HDR_LEN + e->stored_len;
		fn(ctx, &all[i].id, e->raw_len, st);
	}
	free(all);
	return 0;
}

/* The offset of the next record magic after a damaged header at c->off, within the file. */
static int skip_damage(scan *c)
{
	static const uint8_t magic[4] = {'H', 'L', 'R', 'C'};
	uint64_t from = c->off + 1;
	while (from + sizeof magic <= c->size) {
		int err = cover(c, from, sizeof magic);
		if (err)
			return err;
		uint64_t n = c->win_off + c->win_len - from;
		const uint8_t *hit = memmem(at(c, from), n, magic, sizeof magic);
		if (hit) {
			c->off = from + (uint64_t)(hit - at(c, from));
			return 0;
		}
		from += n - (sizeof magic - 1);
	}
	c->off = c->size;
	return 0;
}

/* One record at c->off: 0, 1 when the segment's scan ends here (a torn or growing tail), or an
 * error that stops the scan. */
static int one_record(scan *c, hl_scan_fn fn, void *ctx, uint64_t *done)
{
	int err = cover(c, c->off, HL_REC_HDR_LEN);
	if (!err)
		memcpy(c->hdr, at(c, c->off), HL_REC_HDR_LEN);
	if (!err && hl_rec_decode(c->hdr, sizeof c->hdr, &c->h))
		err = HL_CORRUPT;
	if (err) { /* no readable header where a record should begin: to the next one, and the
	              records the index places in between are checked one by one */
		uint64_t from = c->off;
		hl_log(HL_LOG_WARN, "segment %u offset %llu: %s record header", c->seg,
		       (unsigned long long)from, err == HL_CORRUPT ? "damaged" : "unreadable");
		if ((err = skip_damage(c)) == 0)
			err = check_stretch(c, from, c->off, fn, ctx, done);
		return err ? err : 0;
	}
	uint64_t here = c->off, len = HL_REC_HDR_LEN + c->h.stored_len;
	if (here + len > c->size)
		return 1; /* written after the scan began, or torn: not acknowledged */
	c->off = here + len; /* the next record, whatever this one holds */
	if (hl_st_find_entry(c->s, NULL, &c->h.id, &c->e) ||
	    c->e.segment != c->seg || c->e.offset != here)
		return 0; /* not the live copy: nothing depends on these bytes */
	if (c->e.stored_len != c->h.stored_len || c->e.raw_len != c->h.raw_len || c->e.flags != c->h.flags) {
		err = HL_CORRUPT;
	} else if (c->h.raw_len > c->s->opt.max_object_size) {
		err = HL_CORRUPT;
	} else if ((c->h.flags & (HL_REC_F_ZSTD | HL_REC_F_DELTA)) && c->h.raw_len > c->cap) {
		uint8_t *b = hl_realloc(c->scratch, c->h.raw_len);
		if (!b) {
			c->off = here; /* checked again by the next step */
			return ENOMEM;
		}
		c->scratch = b;
		c->cap = c->h.raw_len;
	}
	hl_id bad_base;
	if (!err && (c->h.flags & HL_REC_F_DELTA)) /* resolved through its base, read by id */
		err = hl_st_check_entry(c->s, &c->h.id, &c->e, c->scratch, &bad_base);
	else if (!err && (err = cover(c, here, len)) == 0)
		err = verify_payload(c, here);
	if (err == HL_CORRUPT)
		hl_st_quarantine(c->s, &c->h.id, &c->e);
	*done += len;
	if (err == DELTA_BASE_BAD) /* this record is sound; the base it needs is what is damaged */
		fn(ctx, &bad_base, 0, HL_CORRUPT);
	else
		fn(ctx, &c->h.id, c->h.raw_len, err);
	return 0;
}

/* The size of segment seg, and a hold on its descriptor (*fd; released by the caller): 0, ENOENT
 * when compaction removed it, or the error (nothing held). */
static int seg_size(hl_local *s, uint32_t seg, int *fd, uint64_t *size)
{
	struct stat st;
	int err = hl_segs_hold(&s->segs, seg, fd);
	if (!err && fstat(*fd, &st) != 0) {
		err = errno;
		hl_segs_release(&s->segs, seg);
	}
	*size = err ? 0 : (uint64_t)st.st_size;
	return err;
}

void hl_scan_buf_free(hl_scan_buf *b)
{
	free(b->win);
	free(b->scratch);
	*b = (hl_scan_buf){0};
}

int hl_local_scan(hl_local *s, hl_scan_buf *buf, hl_seg_pos *pos, hl_seg_pos *end, uint64_t max_bytes,
                  hl_scan_fn fn, void *ctx, int *pass_done)
{
	uint32_t *segs;
	size_t nsegs;
	*pass_done = 0;
	int err = hl_segs_list(&s->segs, &segs, &nsegs);
	if (err)
		return err;
	scan c = {.s = s, .win = buf->win, .win_cap = buf->win_cap, .scratch = buf->scratch,
	          .cap = buf->scratch_cap};
	if (end->segment == 0 && nsegs) { /* a pass begins: it ends where the segments end now */
		uint64_t size = 0, total = 0;
		for (size_t k = 0; k < nsegs; k++) /* (one removed meanwhile counts nothing) */
			if ((err = seg_size(s, segs[k], &c.fd, &size)) == 0) {
				total += size;
				hl_segs_release(&s->segs, segs[k]);
			}
		*end = (hl_seg_pos){segs[nsegs - 1], size};
		/* an index small beside the bytes the pass reads is read in at once, not page by page */
		uint64_t prefetch = total / INDEX_PREFETCH_RATIO;
		hl_idx_prefetch(&s->ix, prefetch < INDEX_PREFETCH_MAX ? prefetch : INDEX_PREFETCH_MAX);
	}
	uint64_t done = 0;
	size_t i = 0;
	while (i < nsegs && segs[i] < pos->segment)
		i++;
	for (; !err && i < nsegs && segs[i] <= end->segment && done < max_bytes; i++) {
		c.seg = segs[i];
		c.off = segs[i] == pos->segment && pos->offset > HL_SEG_HDR_LEN ? pos->offset : HL_SEG_HDR_LEN;
		err = seg_size(s, c.seg, &c.fd, &c.size);
		if (err == ENOENT) { /* compaction removed it meanwhile */
			err = 0;
			continue;
		}
		if (err)
			break;
		if (c.seg == end->segment && c.size > end->offset)
			c.size = end->offset;
		int stop = 0;
		while (!err && !stop && c.off + HL_REC_HDR_LEN <= c.size && done < max_bytes) {
			stop = one_record(&c, fn, ctx, &done);
			if (stop != 0 && stop != 1)
				err = stop;
		}
		hl_segs_release(&s->segs, c.seg);
		c.win_len = 0;
		pos->segment = c.seg;
		pos->offset = c.off;
		if (done >= max_bytes && !stop && c.off + HL_REC_HDR_LEN <= c.size)
			break; /* the budget ends inside this segment */
		pos->segment = c.seg + 1;
		pos->offset = HL_SEG_HDR_LEN;
	}
	if (!err && (i >= nsegs || segs[i] > end->segment)) {
		*pass_done = 1;
		*pos = (hl_seg_pos){0, 0};
		*end = (hl_seg_pos){0, 0};
	}
	*buf = (hl_scan_buf){c.win, c.scratch, c.win_cap, c.cap};
	if (buf->win_cap > KEEP_MAX || buf->scratch_cap > KEEP_MAX)
		hl_scan_buf_free(buf); /* grown for a large record: not held between scans */
	free(segs);
	return err;
}
