/* files_impl.h - what files.c and files_meta.c share (not for the rest of
 * the agent: agent.h has the file API's entry points). */
#ifndef AIRLOCK_AGENT_FILES_IMPL_H
#define AIRLOCK_AGENT_FILES_IMPL_H

#include <jansson.h>

#include "fileinfo.h"
#include "proto.h"

struct agent;

/* Names of a directory (without . and ..), sorted: a NULL-terminated strv
 * in *out and their number, or -errno. */
int files_read_dir_names(int dirfd, char ***out);

void files_handle_list(struct agent *a, const struct proto_hdr *h, json_t *req);
void files_handle_stat(struct agent *a, const struct proto_hdr *h, json_t *req);
void files_handle_rename(struct agent *a, const struct proto_hdr *h, json_t *req);

#endif
