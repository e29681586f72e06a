/*
 * What the build needs to know from git about its context: the commit it was
 * checked out at, for the image's revision annotation and the default tag.
 */
#ifndef OCIB_BUILDER_GIT_H
#define OCIB_BUILDER_GIT_H

#include <stdbool.h>

/* The full and short commit id of HEAD of the git work tree containing dir,
 * or -1 when dir is not in a git work tree (or git is missing).  Callers
 * free the strings. */
int git_head(const char *dir, char **ret_full, char **ret_short);

/* The URL of the origin remote of the work tree containing dir, without
 * any user or password a URL's authority holds, or NULL (caller frees). */
char *git_remote_url(const char *dir);

/* The paths under a directory that HEAD does not hold as they are: modified,
 * staged, deleted, untracked and ignored ones (git status), relative to that
 * directory; an ignored directory counts as a whole. */
struct git_dirty;

/* Asks git about dir; NULL when dir is in no git work tree, or git fails
 * (then nothing can be said, and callers treat the tree as unknown). */
struct git_dirty *git_dirty_load(const char *dir);
/* Whether rel (relative to the directory, '/'-separated) is dirty. */
bool git_dirty_has(const struct git_dirty *d, const char *rel);
/* Whether git found nothing dirty at all. */
bool git_dirty_empty(const struct git_dirty *d);
void git_dirty_free(struct git_dirty *d);

#endif
