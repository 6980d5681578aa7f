/* famfiles.h - the writable files of a sandbox as a fork family sees them
 * (famfiles.c): a manifest (path -> size, sha256) over /tmp, /data and
 * /home/user, a diff of two manifests, and a copy of one sandbox's files
 * into another's. Everything goes over the two agents' protocol (FILE_LIST,
 * FILE_GET, FILE_PUT): the daemon never opens a sandbox's files itself. */
#ifndef AIRLOCK_FAMFILES_H
#define AIRLOCK_FAMFILES_H

#include <jansson.h>

#include "agent_client.h"
#include "operr.h"

/* The directories a fork copies and a diff compares. */
extern const char *const famfiles_roots[3];

/* {"/data/x.csv": {"size":n,"sha256":hex}, ...} of every regular file under
 * the roots (symlinks, devices and sockets are not part of it). */
int famfiles_manifest(struct agent_conn *c, json_t **out, struct op_error *err);
/* {"added":[{path,size,sha256}],"removed":[...],"changed":[{path,size_a,size_b,sha256_a,sha256_b}]}:
 * what b has that a has not, what a has that b has not, what differs. */
json_t *famfiles_diff(json_t *a, json_t *b);
/* Make dst's roots hold src's files: every file of src written into dst
 * (mode kept), every file dst has and src has not deleted, empty
 * directories made. *copied gets the number of files, *bytes their size. */
int famfiles_copy(struct agent_conn *src, struct agent_conn *dst, unsigned *copied, unsigned long long *bytes,
                  struct op_error *err);

#endif
