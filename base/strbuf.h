/*
 * Growable, NUL-terminated byte buffers (git's strbuf, trimmed).
 *
 * buf is always a valid C string; len excludes the terminating NUL.  A
 * strbuf owns its memory: strbuf_release() frees it, strbuf_detach() hands
 * it to the caller.  Appending aborts on out-of-memory like xmalloc.
 */
#ifndef OCIB_BASE_STRBUF_H
#define OCIB_BASE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *buf;
    size_t len;
    size_t alloc;
};

#define STRBUF_INIT                                                                        \
    {                                                                                      \
        NULL, 0, 0                                                                         \
    }

void strbuf_init(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
/* Returns the buffer (never NULL) and leaves sb empty; caller frees. */
char *strbuf_detach(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void strbuf_reset(struct strbuf *sb);
void strbuf_setlen(struct strbuf *sb, size_t len);
/* Returns sb->buf, allocating an empty string if needed. */
const char *strbuf_str(struct strbuf *sb);

static inline void strbuf_releasep(struct strbuf *sb)
{
    strbuf_release(sb);
}
#define _cleanup_strbuf_ __attribute__((cleanup(strbuf_releasep)))

#endif
