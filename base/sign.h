/*
 * Signing with an ECDSA P-256 private key (PEM, as `openssl ecparam -name
 * prime256v1 -genkey` writes it, or PKCS#8), for sigstore signatures.
 *
 * The key's bytes stay inside OpenSSL: they are never copied into an
 * error message, a log or a file; errors name the key's path only.
 */
#ifndef OCIB_BASE_SIGN_H
#define OCIB_BASE_SIGN_H

#include <stddef.h>

#include "base/error.h"

struct sign_key;

/* Loads the key at path; fails when it is not a P-256 private key. */
int sign_key_load(const char *path, struct sign_key **ret, struct ocib_error *err);
void sign_key_free(struct sign_key *k);

/* The base64 of the DER ECDSA signature of sha256(data) (caller frees). */
int sign_data(struct sign_key *k, const void *data, size_t len, char **ret_b64,
              struct ocib_error *err);

#endif
