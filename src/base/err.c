/* err.c — the one table that names every return value: helios codes and errno values. */
#include <string.h>
#include "helios.h"

const char *hl_strerror(int err)
{
	switch (err) {
	case HL_OK: return "success";
	case HL_NOTFOUND: return "object not found";
	case HL_CORRUPT: return "stored data is corrupt (failed verification)";
	case HL_MISMATCH: return "content does not hash to the given id";
	case HL_CONFLICT: return "conflict: the expected value has changed";
	case HL_BUSY: return "busy: too much load, retry later";
	case HL_INVALID: return "invalid argument";
	case HL_TOOBIG: return "too big";
	case HL_NOSPACE: return "no space left on device";
	case HL_LOCKED: return "store is locked by another read-write process";
	case HL_READONLY: return "store is open read-only";
	case HL_NOSTORE: return "no store at this path";
	case HL_VERSION: return "store format is newer than this helios understands";
	case HL_INCOMPLETE: return "object refers to objects that are not stored";
	case HL_CLOSED: return "store is closing";
	case HL_UNAVAILABLE: return "the durable tier is unreachable (retry later)";
	case HL_STOPPED: return "writes stopped after a failed sync; reopen the store (recovery re-checks what was written)";
	case HL_NOTSTORE: return "not a helios store, and not empty (only helios.conf may be there before one is made)";
	case HL_AMBIGUOUS: return "ambiguous: the id prefix names more than one commit; give more of it";
	case HL_UNTRUSTED: return "the server's TLS certificate is not trusted (not signed by a known CA, or not for that name)";
	case HL_FORGOTTEN: return "that commit was forgotten by retention (forget): its snapshot is no longer kept";
	default:
		break;
	}
	if (err > 0)
		return strerror(err);
	return "unknown error";
}
