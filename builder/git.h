/*
 * What the build needs to know from git about its context: the commit it was
 * checked out at, for the image's revision annotation and the default tag.
 */
#ifndef OCIB_BUILDER_GIT_H
#define OCIB_BUILDER_GIT_H

/* The full and short commit id of HEAD of the git work tree containing dir,
 * or -1 when dir is not in a git work tree (or git is missing).  Callers
 * free the strings. */
int git_head(const char *dir, char **ret_full, char **ret_short);

#endif
