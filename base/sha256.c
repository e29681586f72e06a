/*
 * SHA-256 through OpenSSL EVP; see sha256.h.
 */
#include "base/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

void sha256_init(struct sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "ocib: cannot initialise SHA-256\n");
        abort();
    }
    h->ctx = ctx;
    h->bytes = 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
    if (len == 0)
        return;
    EVP_DigestUpdate(h->ctx, data, len);
    h->bytes += len;
}

void sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int n = 0;

    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (unsigned int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[SHA256_HEX_LEN] = '\0';
    sha256_release(h);
}

void sha256_release(struct sha256 *h)
{
    if (h->ctx)
        EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    struct sha256 h;

    sha256_init(&h);
    sha256_update(&h, data, len);
    sha256_final_hex(&h, hex);
}
