/* s3_int.h — private to src/remote/s3*.c: the client's state and the request, URL and listing
 * helpers its files share. */
#ifndef HL_REMOTE_S3_INT_H
#define HL_REMOTE_S3_INT_H
#include <stdatomic.h>
#include "remote/s3.h"

#define URL_MAX 2048
#define REF_BODY_MAX 256
#define CAS_TRIES 16

struct hl_s3 {
	hl_http *http;
	char base[URL_MAX / 2]; /* endpoint/bucket */
	char prefix[256];       /* "" or "prefix/" (escaped) */
	char raw_prefix[256];   /* the same, not escaped (keys in listings) */
	atomic_int probed;      /* the bucket was reached once: existence, credentials, conditional writes */
	atomic_int conditional;
};

/* An object's body as the bucket keeps it: a zstd frame (level 3) when that saves an eighth or
 * more (Content-Encoding: zstd, the size before encoding in X-Amz-Meta-Helios-Size), else the
 * bytes themselves. *enc is malloc'd (free it) or NULL. */
typedef struct encoded {
	const void *body;
	size_t len;
	void *enc;
	char encoding[32], size[64];
} encoded;

/* shared by s3.c, s3_names.c and s3_list.c */
int hl_s3i_url_id(const hl_s3 *s, const char *dir, const hl_id *id, char *out);
int hl_s3i_url_blob(const hl_s3 *s, const hl_id *id, char *out);
int hl_s3i_url_key(const hl_s3 *s, const char *key, char *out);
int hl_s3i_status_err(const char *what, long st);
int hl_s3i_do_req3(hl_s3 *s, const char *method, const char *url, const char *h1, const char *h2,
                   const char *h3, const void *body, size_t len, int not_idempotent, hl_http_resp *r);
int hl_s3i_do_req(hl_s3 *s, const char *method, const char *url, const char *h1, const void *body,
                  size_t len, int not_idempotent, hl_http_resp *r);
void hl_s3i_encode_object(const void *data, size_t len, encoded *e);
int hl_s3i_delete_key(hl_s3 *s, const char *url);
int hl_s3i_list_keys(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx);
/* Checks the bucket once it can be reached (exists, credentials work, conditional writes). */
int hl_s3i_probe(hl_s3 *s);

#endif
