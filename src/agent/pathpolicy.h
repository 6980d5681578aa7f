/* pathpolicy.h - which paths the file API accepts and how it opens them
 * (pathpolicy.c's header says the whole policy). */
#ifndef AIRLOCK_AGENT_PATHPOLICY_H
#define AIRLOCK_AGENT_PATHPOLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "path.h"

#define PATHPOLICY_NORM_MAX PATH_NORM_MAX

struct agent;

enum pathpolicy_kind { PATHPOLICY_FILE, PATHPOLICY_DIR };

/* A read (GET: a regular file; LIST: a directory) of the request's path:
 * the fd, opened inside the root, with the normalised path in norm
 * (PATHPOLICY_NORM_MAX bytes) and, for a file, its stat in *st; or -1 with
 * the ERROR sent. */
int pathpolicy_open_read(struct agent *a, uint32_t req_id, json_t *jpath, enum pathpolicy_kind kind, char *norm,
                         struct stat *st);

/* A write (PUT, DELETE, MKDIR, both ends of RENAME) of jpath: the O_PATH fd of its
 * parent directory, checked writable where it really is (created first if
 * `create`), with norm set and *leaf the last component (inside norm); or -1
 * with the ERROR sent. The caller works on leaf with *at() calls that do not
 * follow a symlink. */
int pathpolicy_open_write_parent(struct agent *a, uint32_t req_id, json_t *jpath, bool create, char *norm,
                                 const char **leaf);

/* A STAT of jpath: the O_PATH fd of the directory holding it (read-checked:
 * not a kernel interface), norm set, *leaf its last component ("" when
 * norm is "/", the fd then being "/" itself); or -1 with the ERROR sent.
 * The caller describes leaf without following it. */
int pathpolicy_open_read_parent(struct agent *a, uint32_t req_id, json_t *jpath, char *norm, const char **leaf);

/* LIST with a depth: may the walk go into dirfd, reached as norm (opened
 * with O_NOFOLLOW from a directory it already walked)? Not into /proc,
 * /sys, /dev, whatever they are mounted as. */
bool pathpolicy_may_walk(struct agent *a, int dirfd, const char *norm);

/* The agent's own read of a file of the sandbox root (/etc/passwd for the
 * names of owners), resolved inside the root: fd or -errno. */
int pathpolicy_open_system_file(struct agent *a, const char *path);

/* /tmp, /data or /home/user itself: exists by construction, never deleted
 * or replaced by a file. */
bool pathpolicy_is_writable_root(const char *norm);

#endif
