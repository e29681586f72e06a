/*
 * ocib's version, and the version of its output format: the format version
 * changes only when the same inputs would give different bytes (tar layout,
 * compressor settings, JSON serialisation), which the golden-digest tests
 * guard; a release that keeps the bytes keeps the format version.
 */
#ifndef OCIB_BASE_VERSION_H
#define OCIB_BASE_VERSION_H

#define OCIB_VERSION "0.1.0"
#define OCIB_FORMAT_VERSION "1"

#endif
