/* sha256.c — SHA-256 through OpenSSL's libcrypto, only for protocols that name content by it
 * (the Bazel HTTP cache verifies uploads against their SHA-256). */
#include <openssl/evp.h>
#include "helios.h"

void hl_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 32;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}
