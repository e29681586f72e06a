/*
 * Licenses as packages state them, as SPDX license expressions: SPDX ids
 * pass (case-insensitively), Debian's DEP-5 short names map to theirs
 * (GPL-2+ is GPL-2.0-or-later, Expat is MIT), "and"/"or" become operators;
 * anything else makes the expression unknown (NULL), which the documents
 * record as NOASSERTION with the stated text beside it.
 */
#include "sbom/sbom.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Ids the SPDX license list has, and the names packages use for them. */
static const char *const known[][2] = {
    {"0BSD", NULL},
    {"AGPL-3.0-only", "AGPL-3"},
    {"AGPL-3.0-or-later", "AGPL-3+"},
    {"Apache-1.1", NULL},
    {"Apache-2.0", "Apache-2"},
    {"Artistic-1.0", "Artistic"},
    {"Artistic-2.0", NULL},
    {"BlueOak-1.0.0", NULL},
    {"BSD-1-Clause", NULL},
    {"BSD-2-Clause", NULL},
    {"BSD-3-Clause", NULL},
    {"BSD-4-Clause", NULL},
    {"BSL-1.0", NULL},
    {"CC-BY-3.0", NULL},
    {"CC-BY-4.0", NULL},
    {"CC-BY-SA-3.0", NULL},
    {"CC-BY-SA-4.0", NULL},
    {"CC0-1.0", "CC0"},
    {"curl", NULL},
    {"FSFAP", NULL},
    {"FSFUL", NULL},
    {"FSFULLR", NULL},
    {"GFDL-1.2-or-later", "GFDL-1.2+"},
    {"GFDL-1.3-or-later", "GFDL-1.3+"},
    {"GPL-1.0-or-later", "GPL-1+"},
    {"GPL-2.0-only", "GPL-2"},
    {"GPL-2.0-or-later", "GPL-2+"},
    {"GPL-3.0-only", "GPL-3"},
    {"GPL-3.0-or-later", "GPL-3+"},
    {"ISC", NULL},
    {"LGPL-2.0-only", "LGPL-2"},
    {"LGPL-2.0-or-later", "LGPL-2+"},
    {"LGPL-2.1-only", "LGPL-2.1"},
    {"LGPL-2.1-or-later", "LGPL-2.1+"},
    {"LGPL-3.0-only", "LGPL-3"},
    {"LGPL-3.0-or-later", "LGPL-3+"},
    {"MIT", "Expat"},
    {"MIT-0", NULL},
    {"MPL-1.1", NULL},
    {"MPL-2.0", NULL},
    {"OpenSSL", NULL},
    {"PSF-2.0", NULL},
    {"Python-2.0", NULL},
    {"Unicode-DFS-2016", NULL},
    {"Unlicense", NULL},
    {"WTFPL", NULL},
    {"X11", NULL},
    {"Zlib", NULL},
    {"ZPL-2.1", NULL},
};

/* The SPDX id for a name, or NULL. */
static const char *id_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        for (size_t k = 0; k < 2; k++)
            if (known[i][k] && strlen(known[i][k]) == len &&
                !strncasecmp(known[i][k], name, len))
                return known[i][0];
    return NULL;
}

bool sbom_license_is_id(const char *s)
{
    const char *id = id_of(s, strlen(s));

    return id && !strcmp(id, s);
}

char *sbom_license_expression(const char *stated)
{
    struct strbuf sb = STRBUF_INIT;
    bool want_term = true; /* an id or "(" comes next */
    int depth = 0;

    for (const char *p = stated; *p;) {
        size_t n;

        if (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
            continue;
        }
        if (*p == '(' || *p == ')') {
            if ((*p == '(') != want_term || (*p == ')' && --depth < 0))
                goto bad;
            depth += *p == '(';
            strbuf_addch(&sb, *p);
            p++;
            continue;
        }
        n = strcspn(p, " \t,()");
        if (!want_term && (n == 3 || n == 2) &&
            (!strncasecmp(p, "and", n) || !strncasecmp(p, "or", n))) {
            strbuf_addstr(&sb, n == 3 ? " AND " : " OR ");
            want_term = true;
        } else if (!want_term && n == 4 && !strncasecmp(p, "with", 4)) {
            goto bad; /* exceptions: not mapped */
        } else if (want_term) {
            const char *id = id_of(p, n);

            if (!id)
                goto bad;
            strbuf_addstr(&sb, id);
            want_term = false;
        } else {
            goto bad;
        }
        p += n;
    }
    if (want_term || depth || !sb.len)
        goto bad;
    return strbuf_detach(&sb);
bad:
    strbuf_release(&sb);
    return NULL;
}
