/* links.h — which objects an object names: a tree its entries, a manifest its chunks. One answer
 * for the two places that must agree on it: the completeness check of a put and the collector's
 * walk. Everything else is an opaque blob that names nothing. */
#ifndef HL_DEDUP_LINKS_H
#define HL_DEDUP_LINKS_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef int (*hl_link_fn)(const hl_id *child, void *ctx);

/* 1 if buf[0..len) begins with the magic of a format that names objects (a tree "HLTR" or a
 * manifest "HLMF"); what the store flags as HL_REC_F_LINKS. */
int hl_links_magic(const uint8_t *buf, size_t len);
/* Calls fn for every object buf names; stops at fn's first nonzero result and returns it.
 * 0 also for an opaque blob: anything that does not parse as a tree or manifest of a version
 * this build writes is one (so an uploaded blob that merely starts with a magic cannot stall the
 * collector; a store written by a newer format is refused at open by its marker). */
int hl_links_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx);

#endif
