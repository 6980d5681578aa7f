/* api.h - request handlers, one file per resource (docs/api.md). Each takes
 * an authenticated, routed request from http.c and answers it. */
#ifndef AIRLOCK_API_H
#define AIRLOCK_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* api_sandboxes.c */
void api_healthz(struct http_req *req);
void api_pool(struct http_req *req); /* admin: warm pool counters and memory */
void api_sandbox_create(struct http_req *req);
void api_sandbox_list(struct http_req *req);
void api_sandbox_get(struct http_req *req);
void api_sandbox_delete(struct http_req *req);
void api_sandbox_timeout(struct http_req *req);
void api_sandbox_logs(struct http_req *req);
void api_sandbox_pause(struct http_req *req);
void api_sandbox_resume(struct http_req *req);
/* api_family.c: fork, diff, merge_into (docs/api.md, `POST /v1/sandboxes/{id}/fork`) */
void api_sandbox_fork(struct http_req *req);
void api_sandbox_diff(struct http_req *req);
void api_sandbox_merge_into(struct http_req *req);

/* api_egress.c (docs/egress.md). api_egress_parse reads a create body's
 * "egress": 0 and *out (NULL: sealed), or -1 with the 400 sent. */
struct egress_policy;
int api_egress_parse(struct http_req *req, const json_t *v, struct egress_policy **out);
void api_egress_get(struct http_req *req);
void api_egress_put(struct http_req *req);
void api_egress_log(struct http_req *req);

/* api_files.c. PUT is streamed: begin (headers known), data (each chunk),
 * end (body complete), cleanup (always, when the request is over). */
void api_files_put_begin(struct http_req *req);
void api_files_put_data(struct http_req *req, const char *data, size_t size);
void api_files_put_end(struct http_req *req);
void api_files_put_cleanup(struct http_req *req);
void api_files_get(struct http_req *req);
void api_files_list(struct http_req *req);
void api_files_delete(struct http_req *req);
void api_files_batch_begin(struct http_req *req); /* api_files_batch.c: POST, multipart */
void api_files_batch_data(struct http_req *req, const char *data, size_t size);
void api_files_batch_end(struct http_req *req);
void api_files_batch_cleanup(struct http_req *req);
void api_files_mkdir(struct http_req *req);
void api_files_watch(struct http_req *req); /* api_files_watch.c: NDJSON stream */
void api_files_rename(struct http_req *req);
void api_files_info(struct http_req *req);

/* api_code.c */
void api_code(struct http_req *req);
void api_exec(struct http_req *req);

struct sandbox;
struct api_error;
/* api_contexts.c: code contexts, independent REPLs of a sandbox (the agent's
 * src/agent/context.c). */
void api_contexts_create(struct http_req *req);
void api_contexts_list(struct http_req *req);
void api_context_get(struct http_req *req);
void api_context_restart(struct http_req *req);
void api_context_delete(struct http_req *req);
/* One CTX_* round trip to sb's agent: 0 with *reply (its OK object), or
 * -errno with err filled (the agent's code passed through: 404 for an
 * unknown context, 400 a bad language or cwd, 429 the cap). The E2B
 * listener shapes the same calls its way (e2b_envd.c). */
int api_context_call(struct sandbox *sb, uint8_t type, json_t *payload, json_t **reply, struct api_error *err);
/* api_procs.c: background processes (proctab.h). api_exec hands it a
 * validated payload (argv/shell, env, cwd) and the audit detail (stolen). */
void api_exec_background(struct http_req *req, json_t *payload, json_t *audit, unsigned timeout_s);
void api_procs_list(struct http_req *req);
void api_proc_get(struct http_req *req);
void api_proc_signal(struct http_req *req);
void api_proc_stdin(struct http_req *req);
void api_proc_resize(struct http_req *req);
void api_proc_output(struct http_req *req);
/* The E2B listener's Connect: the output stream of the running process of
 * agent request `id`, in req's event framing, from now on (from_now) or
 * from its first byte. Takes sb's reference; 404 if none runs. */
void api_proc_stream(struct http_req *req, struct sandbox *sb, long long id, bool from_now);

/* api_keys.c */
void api_keys_create(struct http_req *req);
void api_keys_list(struct http_req *req);
void api_keys_revoke(struct http_req *req);

/* api_templates.c (docs/templates.md) */
void api_template_build(struct http_req *req);
void api_template_list(struct http_req *req);
void api_template_get(struct http_req *req);
void api_template_delete(struct http_req *req);
void api_build_get(struct http_req *req);

/* The live sandbox of the route's {id}, with a reference the caller drops
 * (cleanup_sandbox); NULL after replying 404/410 (api_sandboxes.c). */
struct sandbox;
struct sandbox *api_route_sandbox(struct http_req *req);
/* The same, a paused sandbox included (api_route_sandbox answers it 409
 * sandbox_paused): for the routes that do not need its agent. */
struct sandbox *api_route_sandbox_any(struct http_req *req);

/* Errors from below the API layer (operr.h), answered (api_sandboxes.c):
 * api_error_gone fills err for a request on sb whose agent went away (410
 * if it expired meanwhile, 503 otherwise) and returns its errno;
 * api_reply_op_error replies with the status and code of op. */
struct api_error;
struct op_error;
int api_error_gone(struct api_error *err, struct sandbox *sb);
void api_reply_op_error(struct http_req *req, int r, const struct op_error *op);

/* The audit event of an operation on sandbox_id, written before it
 * (api_audit.c): 0 and *row, or -errno after replying 503
 * audit_unavailable naming what (action when NULL); detail is stolen.
 * api_audit_outcome adds the outcome (stolen) to that row. */
int api_audit_begin(struct http_req *req, const char *action, const char *sandbox_id, json_t *detail,
                    const char *what, int64_t *row);
void api_audit_outcome(struct http_req *req, int64_t row, json_t *outcome);

/* Field helpers shared by the handlers (api_sandboxes.c). Each returns 0,
 * 1 if absent/null (default kept), or replies 400 naming the field and
 * returns -EINVAL. */
int api_field_uint(struct http_req *req, const char *name, unsigned min, unsigned max, unsigned *out);
int api_field_string(struct http_req *req, const char *name, const char **out);
int api_field_bool(struct http_req *req, const char *name, bool *out);
/* object of string->string, serialized size <= max_bytes */
int api_field_env(struct http_req *req, const char *name, size_t max_bytes, json_t **out);

#endif
