/*
 * Parsers of the header values a registry answers with.
 *
 * Each takes the value as the server sent it (untrusted, any bytes) and
 * either understands all of it or refuses it: no value is half-read, no
 * number wraps.  They allocate nothing on failure and never print.
 */
#ifndef OCIB_REGISTRY_HEADERS_H
#define OCIB_REGISTRY_HEADERS_H

#include <stdint.h>
#include <time.h>

/* An upload's progress, "Range: 0-<last>" (the distribution spec's form;
 * "bytes=0-<last>" is accepted too).  <last> is the offset of the last byte
 * received, inclusive.  Sets *next_offset to the next byte the registry
 * expects: last + 1, or 0 for "0--1" (distribution 3's empty upload).
 * Distribution 2.x answers "0-0" both for an empty upload and for one holding
 * one byte, so that value is ambiguous: *next_offset is set to -1 and the
 * caller must start over.  Returns 0, or -1 when value is no such range. */
int registry_parse_range(const char *value, int64_t *next_offset);

/* A WWW-Authenticate challenge: `Scheme k="v", k=v, …`.  Sets *scheme (as
 * sent, e.g. "Bearer") and, when present, *realm, *service and *scope
 * (NULL when absent; the caller frees all four).  Quoted values may contain
 * commas and backslash escapes.  Returns 0, or -1 (nothing set) when value
 * is not a challenge. */
int registry_parse_challenge(const char *value, char **scheme, char **realm, char **service,
                             char **scope);

/* Retry-After: delta-seconds or an HTTP date (relative to now).  Sets *ms to
 * the wait in milliseconds, capped at cap_ms.  Returns 0, or -1 when value
 * is neither. */
int registry_parse_retry_after(const char *value, time_t now, long cap_ms, long *ms);

/* A non-negative decimal integer header (OCI-Chunk-Min-Length,
 * Content-Length): digits only, at most max.  Returns 0, or -1. */
int registry_parse_count(const char *value, int64_t max, int64_t *ret);

#endif
