/*
 * Streaming SHA-256 on OpenSSL's EVP interface.
 *
 * Every digest ocib computes (layer digest and diff_id, blob verification,
 * cache keys) goes through here, fed chunk by chunk so that no blob is ever
 * held whole in memory.
 */
#ifndef OCIB_BASE_SHA256_H
#define OCIB_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

struct sha256 {
    void *ctx; /* EVP_MD_CTX */
    uint64_t bytes;
};

/* Starts a hash; aborts if OpenSSL cannot allocate. */
void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL to hex and frees the context. */
void sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]);
/* Frees the context without producing a digest; safe after final. */
void sha256_release(struct sha256 *h);
/* One-shot convenience. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

#endif
