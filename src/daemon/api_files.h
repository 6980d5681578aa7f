/* api_files.h - what the files routes share (api_files.c: single upload,
 * download, list, delete, mkdir, rename, info; api_files_batch.c: several
 * files in one multipart request). Not a route header: api.h is. */
#ifndef AIRLOCK_API_FILES_H
#define AIRLOCK_API_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "errors.h"
#include "http.h"
#include "registry.h"

#define FILE_OP_TIMEOUT_MS 120000 /* list, delete, final upload reply */

/* A sandbox path as the files routes take it (len bytes, may hold a NUL):
 * normalised into norm (PATH_NORM_MAX bytes); -EINVAL with err filled
 * (400 invalid_request: NUL, not UTF-8, too long, and with names_file a
 * path ending in '/'; 400 path_forbidden: /proc, /sys, /dev). */
int api_files_check_path(const char *path, size_t len, char *norm, bool names_file, struct api_error *err);

/* The query parameter `name` as a sandbox path (api_files_check_path),
 * normalised into norm; NULL after replying 400 (also when required and
 * absent; absent and not required: /home/user). */
const char *api_files_path_param(struct http_req *req, const char *name, bool required, char *norm);

/* An optional true/false (1/0) query parameter into *out (left as is when
 * absent); -EINVAL after replying 400. */
int api_files_bool_param(struct http_req *req, const char *name, bool *out);

/* The audit event of a file operation, written before it (fails closed:
 * -errno after replying 503 audit_unavailable; api_audit_begin); its
 * outcome goes through api_audit_outcome. */
int api_files_audit_before(struct http_req *req, const char *action, const char *path, long long size, int64_t *row);

/* Reply for a failed agent request: 410 if the sandbox expired under it,
 * 503 if its agent went away, else err. */
void api_files_reply_agent_error(struct http_req *req, struct sandbox *sb, int r, struct api_error *err);

/* Open a streamed file request (FILE_GET, FILE_WATCH): start it and take
 * its first frame, which must be OK (ended there only if end_ok). 0 with
 * *areq and *first set; or -1 after replying, the agent's side of the
 * stream ended with cancel() where it would go on. payload is not stolen. */
int api_files_stream_open(struct http_req *req, struct sandbox *sb, uint8_t type, json_t *payload, bool end_ok,
                          void (*cancel)(struct agent_req *), struct agent_req **areq, struct agent_frame **first);

#endif
