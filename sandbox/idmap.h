/*
 * The id maps of the user namespaces the sandbox makes, for sandbox/'s own
 * files.  Nothing outside sandbox/ includes this header.
 *
 * How ids map is decided once per process, on first use: as root, every id
 * to itself; as another user, the caller to root and, when /etc/subuid and
 * /etc/subgid grant it a range and newuidmap/newgidmap are installed, that
 * range to the ids from 1 (unless no_new_privs is set, and only while the
 * helpers succeed); else the caller alone, to root.
 * sandbox_uid_to_inside() and sandbox_gid_to_inside() (sandbox.h) answer
 * under the same maps.
 */
#ifndef OCIB_SANDBOX_IDMAP_H
#define OCIB_SANDBOX_IDMAP_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"

/* Whether this process runs as root, so that every id maps to itself. */
bool idmap_identity(void);

/* Writes the uid and gid maps of pid, a child that has just entered a new
 * user namespace (through newuidmap/newgidmap for a subordinate range,
 * falling back to the caller alone when they fail). Fails naming the file
 * that could not be written. */
int idmap_write(pid_t pid, struct ocib_error *err);

#endif
