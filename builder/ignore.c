/*
 * .dockerignore and gitignore pattern matching; see ignore.h.
 *
 * Design note.  Both syntaxes compile to one small token language over
 * Unicode code points: a literal, '?', a bracket class, '*' (a run of
 * non-'/' characters), "**" at the end (anything, '/' included) and "**"
 * followed by a path (moby's "(.*\/)?": nothing, or anything ending in '/').
 * Docker's translation of "**" is taken from moby/patternmatcher, git's from
 * gitignore(5); a non-anchored gitignore pattern gets a leading "(.*\/)?".
 *
 * A pattern is run as a Thompson NFA: the set of live token positions is
 * advanced one character at a time, so matching costs O(tokens * length)
 * with no backtracking and no recursion, however many stars a pattern has.
 * The same single pass answers "does the pattern match a parent directory":
 * before each '/' of the path, the prefix read so far is a parent, and an
 * accepting state there means the parent is matched.  Each "(.*\/)?" token
 * owns a second state, "inside the group", which may only leave through a
 * '/'; that keeps "a(.*\/)?b" from matching "axb".
 */
#include "builder/ignore.h"
#include "base/cleanup.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

enum tok_kind {
    TOK_LIT,   /* the code point val */
    TOK_ONE,   /* '?': one character but '/' */
    TOK_CLASS, /* '[...]': ranges[val .. val+n), neg inverts; never '/' */
    TOK_STAR,  /* '*': any run of characters but '/' */
    TOK_ANY,   /* trailing "**": anything */
    TOK_DIRS,  /* "**" + path: "(.*\/)?" */
};

struct tok {
    uint8_t kind;
    uint8_t neg;
    uint16_t n;
    uint32_t val;
};

struct range {
    uint32_t lo, hi;
};

struct pattern {
    struct tok *toks;
    size_t ntoks, toks_alloc;
    struct range *ranges;
    size_t nranges, ranges_alloc;
    bool negate;   /* '!' pattern: re-includes */
    bool dir_only; /* gitignore trailing '/' */
};

struct ignore {
    struct pattern *pats;
    size_t npats, alloc;
};

/* Code points 0x110000 + byte stand for bytes that are not valid UTF-8, so
 * that such a byte in a pattern still matches the same byte in a path. */
#define CP_RAW_BASE 0x110000u

/* Decodes the code point at s[*i] (s has len bytes) and advances *i. */
static uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    uint32_t cp, min;
    size_t n;

    if (p[0] < 0x80) {
        *i += 1;
        return p[0];
    }
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2, cp = p[0] & 0x1f, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, cp = p[0] & 0x0f, min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, cp = p[0] & 0x07, min = 0x10000;
    } else {
        goto raw;
    }
    if (left < n)
        goto raw;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            goto raw;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        goto raw;
    *i += n;
    return cp;
raw:
    *i += 1;
    return CP_RAW_BASE + p[0];
}

static void pattern_release(struct pattern *p)
{
    free(p->toks);
    free(p->ranges);
}

static void pattern_releasep(struct pattern *p)
{
    pattern_release(p);
}

static void pattern_push(struct pattern *p, enum tok_kind kind, uint32_t val)
{
    XGROW(p->toks, p->toks_alloc, p->ntoks + 1);
    p->toks[p->ntoks++] = (struct tok){.kind = kind, .val = val};
}

static void pattern_push_range(struct pattern *p, uint32_t lo, uint32_t hi)
{
    XGROW(p->ranges, p->ranges_alloc, p->nranges + 1);
    p->ranges[p->nranges++] = (struct range){lo, hi};
}

/* Adds the ASCII characters of the POSIX class name[0..len) ("alpha", ...)
 * as ranges.  Returns -1 for an unknown name. */
static int pattern_push_posix(struct pattern *p, const char *name, size_t len)
{
    static const struct {
        const char *name;
        int (*is)(int);
    } classes[] = {
        {"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank}, {"cntrl", iscntrl},
        {"digit", isdigit}, {"graph", isgraph}, {"lower", islower}, {"print", isprint},
        {"punct", ispunct}, {"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit},
    };

    for (size_t k = 0; k < ARRAY_SIZE(classes); k++) {
        if (strlen(classes[k].name) != len || memcmp(classes[k].name, name, len) != 0)
            continue;
        for (int c = 0; c < 128; c++) {
            if (!classes[k].is(c))
                continue;
            if (p->nranges > 0 && p->ranges[p->nranges - 1].hi + 1 == (uint32_t)c)
                p->ranges[p->nranges - 1].hi = (uint32_t)c;
            else
                pattern_push_range(p, (uint32_t)c, (uint32_t)c);
        }
        return 0;
    }
    return -1;
}

/* Reads one class member at s[*i], honouring '\' escapes. */
static int class_char(const char *s, size_t len, size_t *i, uint32_t *ret, const char **why)
{
    if (s[*i] == '\\') {
        (*i)++;
        if (*i >= len) {
            *why = "unterminated '['";
            return -1;
        }
    }
    *ret = utf8_next(s, len, i);
    return 0;
}

/* Compiles the bracket class starting at s[*i] == '[' into one TOK_CLASS and
 * moves *i past its ']'.  Docker follows Go's filepath.Match (a leading ']'
 * or a bare '-' is an error); git follows wildmatch (a leading ']' is a
 * member, "[:alpha:]" and friends are understood). */
static int compile_class(struct pattern *p, enum ignore_syntax syntax, const char *s,
                         size_t len, size_t *i, const char **why)
{
    size_t first_range = p->nranges;
    size_t k = *i + 1;
    bool neg = false;

    if (k < len && (s[k] == '!' || s[k] == '^')) {
        neg = true;
        k++;
    }
    for (bool first = true;; first = false) {
        uint32_t lo, hi;

        if (k >= len) {
            *why = "unterminated '['";
            return -1;
        }
        if (s[k] == ']' && !first) {
            k++;
            break;
        }
        if (syntax == IGNORE_DOCKER && s[k] == ']') {
            *why = "empty character class";
            return -1;
        }
        if (syntax == IGNORE_DOCKER && s[k] == '-') {
            *why = "unescaped '-' in character class";
            return -1;
        }
        if (syntax == IGNORE_GIT && s[k] == '[' && k + 1 < len && s[k + 1] == ':') {
            const char *end = memmem(s + k + 2, len - k - 2, ":]", 2);

            if (!end) {
                *why = "unterminated '[:'";
                return -1;
            }
            if (pattern_push_posix(p, s + k + 2, (size_t)(end - (s + k + 2))) < 0) {
                *why = "unknown character class";
                return -1;
            }
            k = (size_t)(end - s) + 2;
            continue;
        }
        if (class_char(s, len, &k, &lo, why) < 0)
            return -1;
        hi = lo;
        if (k + 1 < len && s[k] == '-' && s[k + 1] != ']') {
            k++;
            if (class_char(s, len, &k, &hi, why) < 0)
                return -1;
        } else if (syntax == IGNORE_DOCKER && k + 1 < len && s[k] == '-') {
            *why = "unescaped '-' in character class";
            return -1;
        }
        pattern_push_range(p, lo, hi);
    }
    if (p->nranges - first_range > UINT16_MAX) {
        *why = "character class too large";
        return -1;
    }
    pattern_push(p, TOK_CLASS, (uint32_t)first_range);
    p->toks[p->ntoks - 1].n = (uint16_t)(p->nranges - first_range);
    p->toks[p->ntoks - 1].neg = neg;
    *i = k;
    return 0;
}

/* Compiles s[0..len) into tokens.  On failure *why says what is wrong. */
static int compile(struct pattern *p, enum ignore_syntax syntax, const char *s, size_t len,
                   const char **why)
{
    size_t i = 0;

    while (i < len) {
        char c = s[i];

        if (c == '*') {
            size_t n = 1;

            while (i + n < len && s[i + n] == '*')
                n++;
            if (n == 1) {
                pattern_push(p, TOK_STAR, 0);
                i++;
            } else if (syntax == IGNORE_DOCKER) {
                /* moby: "**" then an optional '/' it swallows; "**" at
                 * the end is ".*", anywhere else "(.*\/)?". */
                i += 2;
                if (i < len && s[i] == '/')
                    i++;
                pattern_push(p, i == len ? TOK_ANY : TOK_DIRS, 0);
            } else if ((i == 0 || s[i - 1] == '/') && (i + n == len || s[i + n] == '/')) {
                /* gitignore: "**" is special only as a whole component. */
                i += n;
                if (i == len) {
                    pattern_push(p, TOK_ANY, 0);
                } else {
                    pattern_push(p, TOK_DIRS, 0);
                    i++;
                }
            } else {
                pattern_push(p, TOK_STAR, 0);
                i += n;
            }
        } else if (c == '?') {
            pattern_push(p, TOK_ONE, 0);
            i++;
        } else if (c == '[') {
            if (compile_class(p, syntax, s, len, &i, why) < 0)
                return -1;
        } else if (c == '\\') {
            if (i + 1 >= len) {
                *why = "trailing '\\'";
                return -1;
            }
            i++;
            pattern_push(p, TOK_LIT, utf8_next(s, len, &i));
        } else {
            pattern_push(p, TOK_LIT, utf8_next(s, len, &i));
        }
    }
    return 0;
}

/* Go's filepath.Clean for '/'-separated paths, in place: collapses "//",
 * drops "." components, resolves ".." lexically, drops a trailing '/'.
 * Returns the new length; an empty result becomes ".".  Writing never
 * overtakes reading, so one buffer serves both. */
static size_t path_clean(char *s, size_t len)
{
    bool rooted = len > 0 && s[0] == '/';
    size_t r = 0, w = 0, dotdot = 0;

    if (rooted) {
        r = w = dotdot = 1;
    }
    while (r < len) {
        if (s[r] == '/') {
            r++;
        } else if (s[r] == '.' && (r + 1 == len || s[r + 1] == '/')) {
            r++;
        } else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == len || s[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && s[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    s[w++] = '/';
                s[w++] = '.';
                s[w++] = '.';
                dotdot = w;
            }
        } else {
            if (w != (rooted ? 1u : 0u))
                s[w++] = '/';
            while (r < len && s[r] != '/')
                s[w++] = s[r++];
        }
    }
    if (w == 0)
        s[w++] = '.';
    s[w] = '\0';
    return w;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Turns a .dockerignore line into its anchored, cleaned pattern text, as
 * moby's ignorefile.ReadAll does.  Returns false for a line that adds
 * nothing.  *ret_text points into buf (a modifiable copy of the line). */
static bool docker_prepare(char *buf, bool *ret_negate, char **ret_text, size_t *ret_len)
{
    char *s = buf;
    size_t len;

    if (s[0] == '#')
        return false;
    len = strlen(s);
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    while (len > 0 && is_blank(s[0]))
        s++, len--;
    if (len == 0)
        return false;
    *ret_negate = s[0] == '!';
    if (*ret_negate) {
        s++, len--;
        while (len > 0 && is_blank(s[0]))
            s++, len--;
    }
    if (len > 0) {
        len = path_clean(s, len);
        if (len > 1 && s[0] == '/')
            s++, len--;
    }
    *ret_text = s;
    *ret_len = len;
    return true;
}

/* Turns a gitignore line into its pattern text, a negate flag, a dir_only
 * flag and whether it is anchored.  Returns false for a line that adds
 * nothing. */
static bool git_prepare(char *buf, bool *ret_negate, bool *ret_dir_only, bool *ret_anchored,
                        char **ret_text, size_t *ret_len)
{
    char *s = buf;
    size_t len = strlen(s);

    if (len == 0 || s[0] == '#')
        return false;
    /* Trailing spaces go unless escaped by an odd number of '\'. */
    while (len > 0 && s[len - 1] == ' ') {
        size_t bs = 0;

        while (bs + 1 < len && s[len - 2 - bs] == '\\')
            bs++;
        if (bs % 2 == 1)
            break;
        len--;
    }
    if (len == 0)
        return false;
    *ret_negate = s[0] == '!';
    if (*ret_negate)
        s++, len--;
    *ret_dir_only = false;
    while (len > 0 && s[len - 1] == '/') {
        *ret_dir_only = true;
        len--;
    }
    *ret_anchored = memchr(s, '/', len) != NULL;
    if (len > 0 && s[0] == '/')
        s++, len--;
    *ret_text = s;
    *ret_len = len;
    return true;
}

struct ignore *ignore_new(void)
{
    return xcalloc(1, sizeof(struct ignore));
}

void ignore_free(struct ignore *ig)
{
    if (!ig)
        return;
    for (size_t i = 0; i < ig->npats; i++)
        pattern_release(&ig->pats[i]);
    free(ig->pats);
    free(ig);
}

bool ignore_is_empty(const struct ignore *ig)
{
    return ig->npats == 0;
}

int ignore_add(struct ignore *ig, enum ignore_syntax syntax, const char *pattern,
               const char *origin, struct ocib_error *err)
{
    _cleanup_(pattern_releasep) struct pattern p = {0};
    _cleanup_free_ char *buf = NULL;
    const char *why = NULL;
    bool anchored = true;
    char *text;
    size_t len;

    if (strlen(pattern) > IGNORE_PATTERN_MAX)
        return ocib_error_usage(err, "%s: pattern is longer than the limit of %d bytes",
                                origin, IGNORE_PATTERN_MAX);
    buf = xstrdup(pattern);
    if (syntax == IGNORE_DOCKER) {
        if (!docker_prepare(buf, &p.negate, &text, &len))
            return 0;
    } else {
        if (!git_prepare(buf, &p.negate, &p.dir_only, &anchored, &text, &len))
            return 0;
    }
    if (len == 0)
        why = p.negate ? "'!' needs a pattern to re-include" : "empty pattern";
    if (ig->npats >= IGNORE_PATTERNS_MAX)
        return ocib_error_usage(err, "%s: too many patterns (the limit is %d)", origin,
                                IGNORE_PATTERNS_MAX);
    if (!anchored)
        pattern_push(&p, TOK_DIRS, 0);
    if (why || compile(&p, syntax, text, len, &why) < 0)
        return ocib_error_usage(err, "%s: invalid pattern \"%s\": %s", origin, pattern,
                                why);
    XGROW(ig->pats, ig->alloc, ig->npats + 1);
    ig->pats[ig->npats++] = p;
    p = (struct pattern){0};
    return 0;
}

int ignore_add_file(struct ignore *ig, int dirfd, const char *name, struct ocib_error *err)
{
    _cleanup_free_ char *data = NULL;
    struct stat st;
    size_t len, lineno = 0;
    char *line;

    if (fstatat(dirfd, name, &st, 0) < 0) {
        if (errno == ENOENT)
            return 0;
        return ocib_error_errno(err, errno, "cannot stat '%s'", name);
    }
    if (fs_read_file_at(dirfd, name, IGNORE_FILE_MAX, &data, &len, err) < 0)
        return -1;
    line = data;
    if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
        line += 3;
    while (line < data + len) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        char *end = nl ? nl : data + len;
        _cleanup_free_ char *origin = NULL;

        lineno++;
        if (memchr(line, '\0', (size_t)(end - line)))
            return ocib_error_usage(err, "'%s' line %zu: contains a NUL byte", name,
                                    lineno);
        if (end > line && end[-1] == '\r')
            end[-1] = '\0';
        *end = '\0';
        origin = xasprintf("'%s' line %zu", name, lineno);
        if (ignore_add(ig, IGNORE_DOCKER, line, origin, err) < 0)
            return -1;
        line = end + 1;
    }
    return 0;
}

/*
 * The NFA.  State i (0 <= i <= ntoks) means "tokens before i are matched";
 * state ntoks accepts.  State ntoks + 1 + i is "inside" the TOK_DIRS token
 * i.  Epsilon moves go from a star-like state i to i + 1 only, so one
 * forward pass computes the closure.
 */
struct nfa {
    const struct pattern *p;
    uint8_t *cur, *next;
    size_t nstates;
    uint8_t small[2 * 2 * 64];
    uint8_t *heap;
};

static void nfa_closure(const struct pattern *p, uint8_t *set)
{
    for (size_t i = 0; i < p->ntoks; i++) {
        if (!set[i])
            continue;
        switch (p->toks[i].kind) {
        case TOK_STAR:
        case TOK_ANY:
        case TOK_DIRS:
            set[i + 1] = 1;
            break;
        default:
            break;
        }
    }
}

static void nfa_init(struct nfa *n, const struct pattern *p)
{
    n->p = p;
    n->nstates = 2 * (p->ntoks + 1);
    n->heap = NULL;
    if (2 * n->nstates <= sizeof(n->small)) {
        n->cur = n->small;
    } else {
        n->heap = xmalloc(2 * n->nstates);
        n->cur = n->heap;
    }
    n->next = n->cur + n->nstates;
    memset(n->cur, 0, n->nstates);
    n->cur[0] = 1;
    nfa_closure(p, n->cur);
}

static void nfa_release(struct nfa *n)
{
    free(n->heap);
}

static bool nfa_accepting(const struct nfa *n)
{
    return n->cur[n->p->ntoks];
}

static bool class_has(const struct pattern *p, const struct tok *t, uint32_t c)
{
    bool in = false;

    for (size_t k = t->val; k < (size_t)t->val + t->n && !in; k++)
        in = p->ranges[k].lo <= c && c <= p->ranges[k].hi;
    return in != (bool)t->neg;
}

/* Feeds one code point.  Returns false when no state is left alive. */
static bool nfa_step(struct nfa *n, uint32_t c)
{
    const struct pattern *p = n->p;
    size_t inner = p->ntoks + 1;
    bool alive = false;
    uint8_t *tmp;

    memset(n->next, 0, n->nstates);
    for (size_t i = 0; i < p->ntoks; i++) {
        const struct tok *t = &p->toks[i];
        bool in_dirs = t->kind == TOK_DIRS && n->cur[inner + i];

        if (!n->cur[i] && !in_dirs)
            continue;
        switch (t->kind) {
        case TOK_LIT:
            n->next[i + 1] |= c == t->val;
            break;
        case TOK_ONE:
            n->next[i + 1] |= c != '/';
            break;
        case TOK_CLASS:
            n->next[i + 1] |= c != '/' && class_has(p, t, c);
            break;
        case TOK_STAR:
            n->next[i] |= c != '/';
            break;
        case TOK_ANY:
            n->next[i] = 1;
            break;
        case TOK_DIRS:
            n->next[inner + i] = 1;
            n->next[i + 1] |= c == '/';
            break;
        }
    }
    nfa_closure(p, n->next);
    for (size_t i = 0; i < n->nstates && !alive; i++)
        alive = n->next[i];
    tmp = n->cur;
    n->cur = n->next;
    n->next = tmp;
    return alive;
}

/* True when p matches path itself or one of its parent directories. */
static bool pattern_matches(const struct pattern *p, const char *path, bool is_dir)
{
    struct nfa n;
    size_t len = strlen(path), i = 0;
    bool hit = false, done = false;

    nfa_init(&n, p);
    while (i < len && !done) {
        uint32_t c = utf8_next(path, len, &i);

        if (c == '/' && nfa_accepting(&n)) {
            hit = true; /* a parent directory is matched */
            done = true;
        } else if (!nfa_step(&n, c)) {
            done = true;
        }
    }
    if (!done)
        hit = nfa_accepting(&n) && (!p->dir_only || is_dir);
    nfa_release(&n);
    return hit;
}

/* True when p could match dirpath, a parent of it, or some path below it. */
static bool pattern_may_match_below(const struct pattern *p, const char *dirpath)
{
    struct nfa n;
    size_t len = strlen(dirpath), i = 0;
    bool may = true;

    nfa_init(&n, p);
    while (i < len) {
        uint32_t c = utf8_next(dirpath, len, &i);

        if (c == '/' && nfa_accepting(&n))
            goto out;
        if (!nfa_step(&n, c)) {
            may = false;
            goto out;
        }
    }
    if (!nfa_accepting(&n))
        may = nfa_step(&n, '/');
out:
    nfa_release(&n);
    return may;
}

bool ignore_match(const struct ignore *ig, const char *relpath, bool is_dir)
{
    for (size_t i = ig->npats; i-- > 0;) {
        if (pattern_matches(&ig->pats[i], relpath, is_dir))
            return !ig->pats[i].negate;
    }
    return false;
}

bool ignore_may_reinclude_below(const struct ignore *ig, const char *dirpath)
{
    size_t from = 0;

    /* Every pattern matching dirpath also matches all below it, so only a
     * '!' pattern after the last of them can change the answer there. */
    for (size_t i = ig->npats; i-- > 0;) {
        if (pattern_matches(&ig->pats[i], dirpath, true)) {
            from = i + 1;
            break;
        }
    }
    for (size_t i = from; i < ig->npats; i++) {
        if (ig->pats[i].negate && pattern_may_match_below(&ig->pats[i], dirpath))
            return true;
    }
    return false;
}
