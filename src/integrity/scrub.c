/* scrub.c — the scrubber, its cursor and corruption log, and repair from other tiers (see
 * scrub.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/stopper.h"
#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "integrity/scrub.h"
#include "base/alloc.h"

#define CURSOR_SAVE_NS (5ull * 1000000000ull)
#define MEMO 256 /* ids last logged unrepairable: a get retrying one does not log it again */

struct hl_scrubber {
	hl_local *s;
	hl_l1 *l1;
	const hl_tier *sources;
	const char *const *names;
	size_t nsources;
	hl_scrub_corrupt_fn on_corrupt;
	void *on_corrupt_ctx;
	char *cursor_path, *log_path;
	int log_fd;
	pthread_mutex_t mu;     /* the cursor, the log, one step at a time */
	hl_seg_pos cursor, end; /* the next record to check; where this pass ends */
	hl_scan_buf buf;        /* what the steps read into, kept between them */
	hl_id memo[MEMO];       /* ring of ids logged unrepairable */
	unsigned nmemo;
	uint64_t saved_ns;
	pthread_t thread;
	int running;
	hl_stopper stopper;
	uint64_t rate, pause_s;
	atomic_uint_fast64_t objects, bytes, corrupt, repaired, unrepairable, passes;
};

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = hl_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The cursor file: "segment=N offset=M end=S:O" (the pass's end). Anything else (a cursor of the
 * index-order walk helios used before: an object id) starts a new pass. */
static void load_cursor(hl_scrubber *sc)
{
	sc->cursor = sc->end = (hl_seg_pos){0, 0};
	char line[96] = "";
	size_t n;
	unsigned seg, eseg;
	unsigned long long off, eoff;
	if (hl_io_read_file(sc->cursor_path, line, sizeof line - 1, &n) == 0 &&
	    sscanf(line, "segment=%u offset=%llu end=%u:%llu", &seg, &off, &eseg, &eoff) == 4) {
		sc->cursor = (hl_seg_pos){seg, off};
		sc->end = (hl_seg_pos){eseg, eoff};
	}
}

/* Replaced whole (written beside, synced, renamed): a crash leaves one or the other. */
static void save_cursor(hl_scrubber *sc)
{
	char line[96];
	int n = snprintf(line, sizeof line, "segment=%u offset=%llu end=%u:%llu\n", sc->cursor.segment,
	                 (unsigned long long)sc->cursor.offset, sc->end.segment,
	                 (unsigned long long)sc->end.offset);
	if (hl_io_replace_file(sc->cursor_path, line, (size_t)n) == 0)
		sc->saved_ns = hl_now_ns();
}

int hl_scrub_new(hl_local *s, const char *dir, hl_l1 *l1, const hl_tier *sources,
                 const char *const *names, size_t nsources, hl_scrub_corrupt_fn on_corrupt,
                 void *ctx, hl_scrubber **out)
{
	hl_scrubber *sc = hl_calloc(1, sizeof(*sc));
	if (!sc)
		return ENOMEM;
	sc->s = s, sc->l1 = l1, sc->sources = sources, sc->names = names, sc->nsources = nsources;
	sc->on_corrupt = on_corrupt, sc->on_corrupt_ctx = ctx;
	sc->cursor_path = join(dir, "scrub.cursor");
	sc->log_path = join(dir, "corruption.log");
	sc->log_fd = -1;
	pthread_mutex_init(&sc->mu, NULL);
	hl_stopper_init(&sc->stopper);
	if (!sc->cursor_path || !sc->log_path) {
		hl_scrub_free(sc);
		return ENOMEM;
	}
	load_cursor(sc);
	*out = sc;
	return 0;
}

void hl_scrub_free(hl_scrubber *sc)
{
	if (!sc)
		return;
	if (sc->running) {
		hl_stopper_stop(&sc->stopper);
		pthread_join(sc->thread, NULL);
	}
	if (sc->cursor_path && !hl_local_read_only(sc->s))
		save_cursor(sc);
	if (sc->log_fd >= 0)
		hl_io_close(sc->log_fd);
	pthread_mutex_destroy(&sc->mu);
	hl_stopper_destroy(&sc->stopper);
	hl_scan_buf_free(&sc->buf);
	free(sc->cursor_path);
	free(sc->log_path);
	free(sc);
}

/* One line per event, appended and synced: "<UTC time> <id> <what>". */
static void log_line(hl_scrubber *sc, const hl_id *id, const char *what)
{
	char hex[HL_ID_HEX_LEN + 1], when[32], line[256];
	hl_id_format(id, hex);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n = snprintf(line, sizeof line, "%s %s %s\n", when, hex, what);
	int err = 0;
	uint64_t end = 0;
	if (sc->log_fd < 0 && (err = hl_io_open(sc->log_path, O_WRONLY | O_CREAT, 0644, &sc->log_fd)) != 0)
		sc->log_fd = -1;
	if (!err && !(err = hl_io_size(sc->log_fd, &end)) && !(err = hl_io_pwrite_full(sc->log_fd, line, (size_t)n, end)))
		err = hl_io_datasync(sc->log_fd);
	if (err)
		hl_log(HL_LOG_ERROR, "corruption log %s: %s (lost: %s)", sc->log_path, strerror(err), line);
}

/* A verified copy of id from the first source that has one. */
static int find_copy(hl_scrubber *sc, const hl_id *id, hl_buf **b, const char **from)
{
	if (sc->l1 && hl_l1_get(sc->l1, id, b) == 0) {
		*from = "l1";
		return 0;
	}
	for (size_t i = 0; i < sc->nsources; i++) {
		int err = sc->sources[i].ops->get(sc->sources[i].self, id, b);
		if (err == 0) {
			*from = sc->names[i];
			return 0;
		}
		if (err != HL_NOTFOUND) {
			char hex[HL_ID_HEX_LEN + 1];
			hl_id_format(id, hex);
			hl_log(HL_LOG_WARN, "repair of %s: source %s: %s", hex, sc->names[i], hl_strerror(err));
		}
	}
	return HL_NOTFOUND;
}

static int repair_locked(hl_scrubber *sc, const hl_id *id, const char **from)
{
	const char *src = NULL;
	hl_buf *b = NULL;
	atomic_fetch_add(&sc->corrupt, 1);
	int err = find_copy(sc, id, &b, &src);
	if (!err) {
		hl_put_item it = {.data = hl_buf_data(b), .len = hl_buf_len(b), .check_id = 1, .id = *id};
		err = hl_local_put_batch(sc->s, &it, 1); /* the good bytes again: lifts the quarantine */
		hl_buf_unref(b);
	}
	char what[128];
	int again = 0;
	for (unsigned i = 0; err && i < MEMO && i < sc->nmemo; i++)
		again |= hl_id_equal(&sc->memo[i], id);
	if (!err)
		snprintf(what, sizeof what, "corrupt repaired-from=%s", src);
	else
		snprintf(what, sizeof what, "corrupt unrepairable (%s)",
		         err == HL_NOTFOUND ? "no source has a verified copy" : hl_strerror(err));
	if (!again)
		log_line(sc, id, what);
	if (err && !again)
		sc->memo[sc->nmemo++ % MEMO] = *id;
	atomic_fetch_add(err ? &sc->unrepairable : &sc->repaired, 1);
	if (from)
		*from = err ? NULL : src;
	return err;
}

int hl_scrub_repair(hl_scrubber *sc, const hl_id *id, const char **from)
{
	pthread_mutex_lock(&sc->mu);
	int err = repair_locked(sc, id, from);
	pthread_mutex_unlock(&sc->mu);
	return err;
}

typedef struct step {
	hl_scrubber *sc;
	uint64_t *found;
} step;

static void on_record(void *ctx, const hl_id *id, uint64_t raw_len, int status)
{
	step *st = ctx;
	hl_scrubber *sc = st->sc;
	atomic_fetch_add(&sc->objects, 1);
	atomic_fetch_add(&sc->bytes, raw_len);
	if (status == HL_CORRUPT) { /* quarantined by the scan */
		if (st->found)
			++*st->found;
		if (sc->on_corrupt)
			sc->on_corrupt(sc->on_corrupt_ctx);
		repair_locked(sc, id, NULL);
	} else if (status) { /* unreadable: kept, logged; the next pass tries again */
		char what[96];
		snprintf(what, sizeof what, "unreadable (%s)", hl_strerror(status));
		log_line(sc, id, what);
	}
}

int hl_scrub_step(hl_scrubber *sc, uint64_t max_bytes, int *pass_done, uint64_t *found)
{
	pthread_mutex_lock(&sc->mu);
	step st = {sc, found};
	int err = hl_local_scan(sc->s, &sc->buf, &sc->cursor, &sc->end, max_bytes, on_record, &st, pass_done);
	if (*pass_done)
		atomic_fetch_add(&sc->passes, 1);
	if (!hl_local_read_only(sc->s) && (*pass_done || hl_now_ns() - sc->saved_ns > CURSOR_SAVE_NS))
		save_cursor(sc);
	pthread_mutex_unlock(&sc->mu);
	return err;
}

static void *scrub_main(void *arg)
{
	hl_scrubber *sc = arg;
	pthread_setname_np(pthread_self(), "hl-scrub");
	const uint64_t slice = sc->rate / 10; /* a tenth of a second's bytes per step */
	while (1) {
		uint64_t t0 = hl_now_ns(), before = atomic_load(&sc->bytes);
		int pass_done = 0;
		int err = hl_scrub_step(sc, slice, &pass_done, NULL);
		uint64_t read = atomic_load(&sc->bytes) - before;
		uint64_t due = hl_pace_due(t0, read, sc->rate), now = hl_now_ns();
		uint64_t wait = due > now ? due - now : 0;
		if (err)
			wait = 1000000000ull; /* the store is busy or failing: try again in a second */
		if (pass_done)
			wait += sc->pause_s * 1000000000ull;
		if (hl_stopper_rest(&sc->stopper, wait ? wait : 1000000))
			break;
	}
	return NULL;
}

int hl_scrub_start(hl_scrubber *sc, uint64_t bytes_per_s, unsigned pause_s)
{
	if (sc->running || bytes_per_s < (64u << 10))
		return HL_INVALID;
	sc->rate = bytes_per_s;
	sc->pause_s = pause_s;
	if (pthread_create(&sc->thread, NULL, scrub_main, sc))
		return EAGAIN;
	sc->running = 1;
	return 0;
}

void hl_scrub_stats_get(hl_scrubber *sc, hl_scrub_stats *out)
{
	out->objects = atomic_load(&sc->objects);
	out->bytes = atomic_load(&sc->bytes);
	out->corrupt = atomic_load(&sc->corrupt);
	out->repaired = atomic_load(&sc->repaired);
	out->unrepairable = atomic_load(&sc->unrepairable);
	out->passes = atomic_load(&sc->passes);
}
