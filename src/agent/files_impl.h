/* files_impl.h - what the file ops' own files share (not for the rest of
 * the agent: agent.h has the file API's entry points). The calls go
 * files.c -> files_meta.c -> files_copy.c -> dirtree.c, downwards only
 * (tests/unit/check_layers.py src/agent). */
#ifndef AIRLOCK_AGENT_FILES_IMPL_H
#define AIRLOCK_AGENT_FILES_IMPL_H

#include <jansson.h>
#include <stdbool.h>

#include "fileinfo.h"
#include "proto.h"

struct agent;

/* dirtree.c. Names of a directory (without . and ..), sorted: a
 * NULL-terminated strv in *out and their number, or -errno. */
int files_read_dir_names(int dirfd, char ***out);

#define FILES_MAX_DEPTH 256 /* recursive delete and copy */

/* Delete everything inside the directory `name` of dirfd (not the
 * directory itself), never following symlinks (a link to elsewhere is
 * removed, not its target). depth: 0 at the top. 0 or -errno. */
int files_remove_tree_contents(int dirfd, const char *name, int depth);

/* RENAME between mounts (EXDEV: /tmp, /data and /home/user are separate
 * mounts of one store): copy sleaf of sfd (a file, a symlink, or a
 * directory with everything in it; owner, mode and mtime kept) under a
 * hidden temporary name in dfd, rename it to dleaf (not over an existing
 * one unless overwrite), then delete the source. 0; -errno with nothing
 * changed; 1 when the move is done but the source could not be removed
 * (*err its errno). files_copy.c. */
int files_move_across(int sfd, const char *sleaf, int dfd, const char *dleaf, bool overwrite, int *err);

/* files_meta.c */
void files_handle_list(struct agent *a, const struct proto_hdr *h, json_t *req);
void files_handle_stat(struct agent *a, const struct proto_hdr *h, json_t *req);
void files_handle_rename(struct agent *a, const struct proto_hdr *h, json_t *req);

#endif
