/*
 * Base64; see base64.h.
 */
#include "base/base64.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        strbuf_addch(&sb, alphabet[(v >> 18) & 63]);
        strbuf_addch(&sb, alphabet[(v >> 12) & 63]);
        strbuf_addch(&sb, i + 1 < len ? alphabet[(v >> 6) & 63] : '=');
        strbuf_addch(&sb, i + 2 < len ? alphabet[v & 63] : '=');
    }
    return strbuf_detach(&sb);
}

int base64_decode(const char *s, char **ret, size_t *ret_len)
{
    size_t n = strlen(s), out_len = 0, pad = 0;
    char *out;
    unsigned acc = 0;
    int bits = 0;

    if (n % 4)
        return -1;
    out = xmalloc(n / 4 * 3 + 1);
    for (size_t i = 0; i < n; i++) {
        const char *p;

        if (s[i] == '=' && i >= n - 2) {
            pad++;
            continue;
        }
        p = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (pad || !p) {
            free(out);
            return -1;
        }
        acc = (acc << 6) | (unsigned)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[out_len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[out_len] = '\0';
    *ret = out;
    *ret_len = out_len;
    return 0;
}
