/*
 * ECDSA P-256 signatures through OpenSSL's EVP interface; see sign.h.
 */
#include "base/sign.h"
#include "base/base64.h"
#include "base/xalloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sign_key {
    EVP_PKEY *pkey;
};

int sign_key_load(const char *path, struct sign_key **ret, struct ocib_error *err)
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *pkey;
    char group[64] = "";
    size_t glen = 0;

    if (!f)
        return ocib_error_errno(err, errno, "--sign-key '%s': cannot open", path);
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey)
        return ocib_error_usage(err, "--sign-key '%s': not a PEM private key", path);
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &glen) != 1 ||
        strcmp(group, "prime256v1")) {
        EVP_PKEY_free(pkey);
        return ocib_error_usage(err, "--sign-key '%s': not an ECDSA P-256 key", path);
    }
    *ret = xcalloc(1, sizeof(**ret));
    (*ret)->pkey = pkey;
    return 0;
}

void sign_key_free(struct sign_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

int sign_data(struct sign_key *k, const void *data, size_t len, char **ret_b64,
              struct ocib_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[128];
    size_t sig_len = sizeof(sig);
    int ok;

    if (!ctx)
        return ocib_error_set(err, "signing: out of memory");
    ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
         EVP_DigestSign(ctx, sig, &sig_len, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return ocib_error_set(err, "signing: OpenSSL refused to sign");
    *ret_b64 = base64_encode(sig, sig_len);
    return 0;
}
