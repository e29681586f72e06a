/*
 * Scope-bound resource release, systemd style.
 *
 * A variable declared with one of the _cleanup_*_ attributes is released when
 * it goes out of scope; TAKE_PTR() / TAKE_FD() hand ownership out of the
 * scope so that the cleanup becomes a no-op.  Every destructor used here
 * accepts the "empty" value (NULL or -1).
 */
#ifndef OCIB_BASE_CLEANUP_H
#define OCIB_BASE_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void ocib_freep(void *p)
{
    free(*(void **)p);
}
static inline void ocib_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void ocib_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void ocib_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(ocib_freep)
#define _cleanup_close_ _cleanup_(ocib_closep)
#define _cleanup_fclose_ _cleanup_(ocib_fclosep)
#define _cleanup_closedir_ _cleanup_(ocib_closedirp)

/* Declares "void name##p(type **)" calling func on a non-NULL pointer. */
#define OCIB_DEFINE_CLEANUP(type, func)                                                    \
    static inline void func##p(type **p)                                                   \
    {                                                                                      \
        if (*p)                                                                            \
            func(*p);                                                                      \
    }

#define TAKE_PTR(p)                                                                        \
    ({                                                                                     \
        typeof(p) _ptr_ = (p);                                                             \
        (p) = NULL;                                                                        \
        _ptr_;                                                                             \
    })

#define TAKE_FD(fd)                                                                        \
    ({                                                                                     \
        int _fd_ = (fd);                                                                   \
        (fd) = -1;                                                                         \
        _fd_;                                                                              \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
