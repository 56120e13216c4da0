/* links.h — which objects an object names: a tree its entries, a manifest its chunks, a commit
 * its tree and parents. One answer for the two places that must agree on it: the completeness
 * check of a put and the collector's walk. Everything else is an opaque blob that names nothing. */
#ifndef HL_DEDUP_LINKS_H
#define HL_DEDUP_LINKS_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "dedup/forgotten.h"

typedef int (*hl_link_fn)(const hl_id *child, void *ctx);

/* 1 if buf[0..len) begins with the magic of a format that names objects (a tree "HLTR", a
 * manifest "HLMF", a commit "HLCM"); what the store flags as HL_REC_F_LINKS. */
int hl_links_magic(const uint8_t *buf, size_t len);
/* Calls fn for every object buf names; stops at fn's first nonzero result and returns it.
 * 0 also for an opaque blob: anything that does not parse as a tree or manifest of a version
 * this build writes is one (so an uploaded blob that merely starts with a magic cannot stall the
 * collector; a store written by a newer format is refused at open by its marker). */
int hl_links_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx);
/* The collector's walk: as hl_links_each, but what forget dropped is not followed (a forgotten
 * commit's tree, a cut commit's parents; forgotten may be NULL). id: the object's id (the
 * collector knows it: nothing is hashed again). */
int hl_links_each_kept(const uint8_t *buf, size_t len, const hl_id *id, const hl_forgotten *forgotten,
                       hl_link_fn fn, void *ctx);
/* The completeness check of a put: what must be stored before buf is (a commit needs its tree;
 * its parents are history, which may come later or have been forgotten). */
int hl_links_needed_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx);

#endif
