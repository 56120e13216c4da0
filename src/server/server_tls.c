/* server_tls.c — HTTPS for `helios serve`: the certificate chain and key, loaded with GnuTLS (which
 * libmicrohttpd's TLS is built on) and handed to each handshake by a callback, so SIGHUP can load
 * new files while the server runs: handshakes after it get the new certificate, connections
 * already up keep theirs. TLS 1.2 and 1.3 only. */
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include "server/server_int.h"

struct sv_tls_cert {
	gnutls_pcert_st *chain;
	unsigned n;
	gnutls_privkey_t key;
	struct sv_tls_cert *older; /* retired by a reload; freed at stop (a handshake may hold it) */
};

static _Atomic(sv_tls_cert *) current; /* one server per process (see hl_server_run) */

static void cert_free(sv_tls_cert *c)
{
	while (c) {
		sv_tls_cert *older = c->older;
		for (unsigned i = 0; i < c->n; i++)
			gnutls_pcert_deinit(&c->chain[i]);
		free(c->chain);
		if (c->key)
			gnutls_privkey_deinit(c->key);
		free(c);
		c = older;
	}
}

#define CHAIN_MAX 16

int hl_sv_tls_load(const char *cert_file, const char *key_file, sv_tls_cert **out, const char **why)
{
	gnutls_datum_t cert = {0}, key = {0};
	sv_tls_cert *c = calloc(1, sizeof(*c));
	int err = 0;
	if (!c || !(c->chain = calloc(CHAIN_MAX, sizeof(*c->chain)))) {
		err = ENOMEM;
	} else if (gnutls_load_file(cert_file, &cert) < 0) {
		*why = "cannot read the --tls-cert file";
		err = errno ? errno : ENOENT;
	} else if (gnutls_load_file(key_file, &key) < 0) {
		*why = "cannot read the --tls-key file";
		err = errno ? errno : ENOENT;
	} else {
		unsigned n = CHAIN_MAX;
		if (gnutls_pcert_list_import_x509_raw(c->chain, &n, &cert, GNUTLS_X509_FMT_PEM, 0) < 0 || !n) {
			*why = "--tls-cert holds no PEM certificate GnuTLS accepts";
			err = HL_INVALID;
		} else {
			c->n = n;
			if (gnutls_privkey_init(&c->key) < 0 ||
			    gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
				*why = "--tls-key holds no unencrypted PEM private key GnuTLS accepts";
				err = HL_INVALID;
			}
		}
	}
	gnutls_free(cert.data);
	if (key.data) {
		gnutls_memset(key.data, 0, key.size);
		gnutls_free(key.data);
	}
	if (err) {
		cert_free(c);
		return err;
	}
	*out = c;
	return 0;
}

/* libmicrohttpd's certificate callback (gnutls_certificate_retrieve_function2). */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **chain,
                    unsigned int *n, gnutls_privkey_t *key)
{
	(void)session, (void)req_ca_dn, (void)nreqs, (void)algos, (void)nalgos;
	sv_tls_cert *c = atomic_load(&current);
	if (!c)
		return -1;
	*chain = c->chain;
	*n = c->n;
	*key = c->key;
	return 0;
}

int hl_sv_tls_start(server *sv, const char **why)
{
	sv_tls_cert *c;
	int err = hl_sv_tls_load(sv->cfg.tls_cert, sv->cfg.tls_key, &c, why);
	if (!err)
		atomic_store(&current, c);
	return err;
}

void hl_sv_tls_reload(server *sv)
{
	const char *why = NULL;
	sv_tls_cert *c;
	int err = hl_sv_tls_load(sv->cfg.tls_cert, sv->cfg.tls_key, &c, &why);
	if (err) {
		fprintf(stderr, "helios: serve: SIGHUP: the certificate was not reloaded (%s: %s); the "
		        "old one stays\n", why ? why : "load", hl_strerror(err));
		return;
	}
	c->older = atomic_exchange(&current, c);
	fprintf(stderr, "helios: serve: SIGHUP: certificate reloaded from %s\n", sv->cfg.tls_cert);
}

void hl_sv_tls_stop(void)
{
	cert_free(atomic_exchange(&current, NULL));
}

void *hl_sv_tls_callback(void)
{
	return (void *)retrieve;
}

void hl_sv_tls_free(sv_tls_cert *c)
{
	cert_free(c);
}
