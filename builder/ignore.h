/*
 * Path matching for context copies: .dockerignore and gitignore patterns.
 *
 * A struct ignore is an ordered list of compiled patterns.  Two syntaxes feed
 * it: IGNORE_DOCKER for the context's .ocibignore file (moby/patternmatcher
 * rules: every pattern is cleaned and anchored at the context root, "**"
 * spans any number of path components) and IGNORE_GIT for a copy's
 * "exclude" list (gitignore rules: a pattern without an inner '/' matches a
 * name at any depth, a trailing '/' matches only directories).  Both
 * syntaxes are evaluated the same way: a path is excluded when the last
 * pattern matching it, or matching one of its parent directories, is not a
 * '!' pattern.  As in Docker (and unlike git), a '!' pattern can therefore
 * re-include a file inside an excluded directory; a walker asks
 * ignore_may_reinclude_below() before pruning a directory.
 *
 * Matching works on UTF-8 characters ('?' matches one character, never
 * '/'), runs in time proportional to pattern length times path length, and
 * never recurses.  Patterns are capped at IGNORE_PATTERN_MAX bytes and a list
 * at IGNORE_PATTERNS_MAX patterns.
 */
#ifndef OCIB_BUILDER_IGNORE_H
#define OCIB_BUILDER_IGNORE_H

#include <stdbool.h>

#include "base/error.h"

#define IGNORE_PATTERN_MAX 4096       /* bytes in one pattern */
#define IGNORE_PATTERNS_MAX 10000     /* patterns in one struct ignore */
#define IGNORE_FILE_MAX (1024 * 1024) /* bytes in an ignore file */

enum ignore_syntax {
    IGNORE_DOCKER, /* .dockerignore / .ocibignore */
    IGNORE_GIT,    /* gitignore, used by a copy's "exclude" */
};

struct ignore;

/* Returns an empty pattern list; free it with ignore_free(). */
struct ignore *ignore_new(void);

/* Frees ig and its patterns.  Accepts NULL. */
void ignore_free(struct ignore *ig);

/* Compiles one pattern line and appends it to ig.  origin names where the
 * line came from and prefixes every error ("'.ocibignore' line 3",
 * "stages[0].layers[1].copy[0].exclude[2]").  Empty lines and lines whose
 * first character is '#' add nothing and succeed.
 *
 * IGNORE_DOCKER: surrounding white space is trimmed, a leading '!' makes a
 * re-including pattern, the rest is cleaned like Go's filepath.Clean ("./a",
 * "/a", "a//b/", "a/../a" all become "a" or "a/b").
 * IGNORE_GIT: trailing unescaped spaces are dropped; '!' re-includes;
 * "\#" and "\!" stand for a literal first character.
 *
 * Fails with a usage error "<origin>: invalid pattern \"<pattern>\": <why>"
 * for a bad pattern (unterminated '[', empty class, trailing '\', a lone
 * '!'), when the pattern is longer than IGNORE_PATTERN_MAX bytes or ig
 * already holds IGNORE_PATTERNS_MAX patterns.  ig is unchanged on failure. */
int ignore_add(struct ignore *ig, enum ignore_syntax syntax, const char *pattern,
               const char *origin, struct ocib_error *err);

/* Adds every line of the .dockerignore-syntax file name, opened relative to
 * dirfd (AT_FDCWD for the current directory).  A missing file adds nothing
 * and succeeds.  The file is capped at IGNORE_FILE_MAX bytes; a UTF-8 byte
 * order mark and "\r\n" line ends are accepted.  Errors name the file and
 * the line ("'.ocibignore' line 3: invalid pattern ...").  Patterns of lines
 * before a failing line stay added. */
int ignore_add_file(struct ignore *ig, int dirfd, const char *name, struct ocib_error *err);

/* Tells whether relpath is excluded.  relpath is relative to the context
 * root, '/'-separated, with no leading "./" or "/" and no trailing '/'; it
 * is never "." (the root itself is never excluded).  is_dir says whether it
 * names a directory (for gitignore patterns ending in '/').  The last
 * pattern that matches relpath or one of its parent directories decides; a
 * '!' pattern re-includes. */
bool ignore_match(const struct ignore *ig, const char *relpath, bool is_dir);

/* Tells whether a '!' pattern could re-include some path strictly below the
 * directory dirpath (same form as relpath above), in which case a walker
 * must descend into dirpath even though ignore_match() excludes it.  Only
 * '!' patterns after the last pattern that excludes dirpath count; the
 * answer errs on the side of true. */
bool ignore_may_reinclude_below(const struct ignore *ig, const char *dirpath);

/* True when ig holds no pattern, so that nothing can be excluded. */
bool ignore_is_empty(const struct ignore *ig);

#endif
