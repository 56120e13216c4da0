/* names.c — the mutable names of include/helios.h: refs (compare-and-swap) and kv namespaces. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/log.h"
#include "hash/hash.h"
#include "cache/l1.h"
#include "cache/l2.h"
#include "coord/coord.h"
#include "dedup/fleetgc.h"
#include "dedup/gc.h"
#include "dedup/links.h"
#include "integrity/bscrub.h"
#include "integrity/scrub.h"
#include "remote/hremote.h"
#include "remote/s3.h"
#include "store/names.h"
#include "store/store.h"
#include "tier/fleet.h"
#include "tier/tier.h"
#include "api/api.h"
#include "base/alloc.h"

/* ---- refs ---- */

int hl_ref_valid(const char *name)
{
	return name && hl_names_ref_valid(name, strlen(name));
}

int hl_ref_get(hl_store *s, const char *name, hl_id *out)
{
	if (!out || !hl_ref_valid(name))
		return HL_INVALID;
	return s->be.ops->ref_get(s->be.self, name, out);
}

/* A ref may only point at a stored object (GC roots must be complete). */
static int ref_update(hl_store *s, const char *name, const hl_id *expect, const hl_id *target,
                      int force)
{
	int err = hl_api_writable(s);
	if (err || !hl_ref_valid(name))
		return err ? err : HL_INVALID;
	if (target && (err = hl_has(s, target)) != 0) /* stored whole or as chunks */
		return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
	return s->be.ops->ref_set(s->be.self, name, expect, target, force);
}

int hl_ref_cas(hl_store *s, const char *name, const hl_id *expect, const hl_id *target)
{
	return target ? ref_update(s, name, expect, target, 0) : HL_INVALID;
}

int hl_ref_set(hl_store *s, const char *name, const hl_id *target)
{
	return target ? ref_update(s, name, NULL, target, 1) : HL_INVALID;
}

int hl_ref_delete(hl_store *s, const char *name, const hl_id *expect)
{
	return ref_update(s, name, expect, NULL, expect == NULL);
}

int hl_ref_list(hl_store *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	if (!fn)
		return HL_INVALID;
	return s->be.ops->ref_list(s->be.self, prefix, fn, ctx);
}

/* ---- kv ---- */

static int kv_valid(const char *ns, const void *key, size_t klen)
{
	return hl_names_ns_valid(ns, ns ? strlen(ns) : 0) && hl_names_key_valid(key, klen);
}

/* Points the key at a stored object of len bytes. */
static int kv_set(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                  uint64_t len)
{
	uint64_t evicted = 0;
	int err = s->be.ops->kv_set(s->be.self, ns, key, klen, id, len, s->kv_max_bytes, &evicted);
	if (!err && evicted)
		hl_log(HL_LOG_DEBUG, "kv %s: %llu least recently used keys evicted", ns,
		       (unsigned long long)evicted);
	return err;
}

/* After a kv entry was pointed at id: the object relied on again, so a collection running now
 * holds it (its roots may have been read before the entry existed), and, when one took it between
 * its put and the entry (a writer slower than the grace period), stored again from data. With no
 * data (a link), HL_INCOMPLETE: the entry is removed again. */
static int kv_keep(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                   const void *data, size_t len)
{
	int err = hl_api_has(s, id);
	if (err != HL_NOTFOUND)
		return 0; /* present and relied on (or unknown: the entry stays, as a ref would) */
	hl_log(HL_LOG_WARN, "kv %s: a collection took the value while its key was set; %s", ns,
	       data ? "stored again" : "the key is removed");
	if (data)
		return hl_coord_put(s->coord, id, data, len, NULL, NULL);
	s->be.ops->kv_delete(s->be.self, ns, key, klen);
	return HL_INCOMPLETE;
}

int hl_kv_put(hl_store *s, const char *ns, const void *key, size_t klen, const void *data,
              size_t len)
{
	int err = hl_api_writable(s);
	if (err)
		return err;
	if (!kv_valid(ns, key, klen) || (!data && len))
		return HL_INVALID;
	if (len > s->kv_max_bytes)
		return HL_TOOBIG;
	hl_id id;
	if ((err = hl_coord_put(s->coord, NULL, data, len, &id, NULL)) != 0 ||
	    (err = kv_set(s, ns, key, klen, &id, len)) != 0)
		return err;
	return kv_keep(s, ns, key, klen, &id, data, len);
}

int hl_kv_link(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id)
{
	int err = hl_api_writable(s);
	if (err || !id || !kv_valid(ns, key, klen))
		return err ? err : HL_INVALID;
	hl_stat st;
	if ((err = hl_has(s, id)) != 0 || (err = hl_stat_object(s, id, &st)) != 0)
		return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
	if (st.size > s->kv_max_bytes)
		return HL_TOOBIG;
	if ((err = kv_set(s, ns, key, klen, id, st.size)) != 0)
		return err;
	return kv_keep(s, ns, key, klen, id, NULL, 0);
}

int hl_kv_lookup(hl_store *s, const char *ns, const void *key, size_t klen, hl_id *id,
                 uint64_t *size)
{
	hl_id dummy;
	uint64_t sz;
	if (!kv_valid(ns, key, klen))
		return HL_INVALID;
	return s->be.ops->kv_get(s->be.self, ns, key, klen, id ? id : &dummy, size ? size : &sz);
}

int hl_kv_stat(hl_store *s, const char *ns, const void *key, size_t klen, uint64_t *size)
{
	return hl_kv_lookup(s, ns, key, klen, NULL, size);
}

int hl_kv_get(hl_store *s, const char *ns, const void *key, size_t klen, hl_buf **out)
{
	hl_id id;
	if (!out)
		return HL_INVALID;
	int err = hl_kv_lookup(s, ns, key, klen, &id, NULL);
	return err ? err : hl_get(s, &id, out);
}

int hl_kv_delete(hl_store *s, const char *ns, const void *key, size_t klen)
{
	int err = hl_api_writable(s);
	if (!err && !kv_valid(ns, key, klen))
		err = HL_INVALID;
	return err ? err : s->be.ops->kv_delete(s->be.self, ns, key, klen);
}

int hl_kv_usage(hl_store *s, const char *ns, uint64_t *bytes, uint64_t *keys)
{
	uint64_t b = 0, k = 0;
	if (!hl_names_ns_valid(ns, ns ? strlen(ns) : 0))
		return HL_INVALID;
	int err = s->be.ops->kv_usage ? s->be.ops->kv_usage(s->be.self, ns, &b, &k) : HL_INVALID;
	if (bytes)
		*bytes = b;
	if (keys)
		*keys = k;
	return err;
}
