/* e2b.h - the E2B-compatible listener (--e2b-listen, docs/e2b.md).
 *
 * E2B's SDKs, unmodified, pointed at airlockd with E2B_API_URL and
 * E2B_SANDBOX_URL. e2b_api.c answers E2B's control plane (its OpenAPI spec:
 * /sandboxes, /v2/sandboxes); e2b_envd.c the data plane its SDKs send to the
 * in-sandbox daemon envd (Connect RPCs in JSON, /files) and to the code
 * interpreter (/execute). Both map onto Airlock's own handlers (api_*.c)
 * wherever one exists, reshaping what they answer (http.h: reply_hook,
 * event_hook), so validation, auditing and limits stay in one place. */
#ifndef AIRLOCK_E2B_H
#define AIRLOCK_E2B_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "http.h"

/* The envd version the create answer reports: the SDK gates features on it
 * (>= 0.4.0: no default "user" on file calls; >= 0.5.2: CloseStdin; not
 * 0.5.7, whose uploads could skip multipart). */
#define E2B_ENVD_VERSION "0.5.2"
#define E2B_ENVD_PORT 49983    /* envd: processes and files */
#define E2B_JUPYTER_PORT 49999 /* the code interpreter */

/* E2B's error body: {"code":<status>,"message"} on the REST routes,
 * Connect's {"code":"<name>","message"} on the RPCs. */
json_t *e2b_error_json(bool connect, unsigned status, const char *message);
/* A streamed RPC's error: one end-of-stream envelope {"error":{...}}. */
struct MHD_Response *e2b_stream_error(unsigned status, const char *message);

/* e2b_api.c: control plane */
void e2b_sandbox_create(struct http_req *req);
void e2b_sandbox_list(struct http_req *req);    /* GET /v2/sandboxes: paginated */
void e2b_sandbox_list_v1(struct http_req *req); /* GET /sandboxes: all */
void e2b_sandbox_get(struct http_req *req);
void e2b_sandbox_kill(struct http_req *req);
void e2b_sandbox_timeout(struct http_req *req);
void e2b_sandbox_connect(struct http_req *req);
void e2b_sandbox_pause(struct http_req *req);
void e2b_sandbox_resume(struct http_req *req);
void e2b_sandbox_sealed(struct http_req *req);      /* network: would open the seal */
void e2b_sandbox_unsupported(struct http_req *req); /* pause, resume, snapshots, fork */

/* e2b_envd.c: data plane (the sandbox is the E2b-Sandbox-Id header) */
void e2b_health(struct http_req *req);
void e2b_execute(struct http_req *req);
void e2b_process_start(struct http_req *req);
void e2b_process_signal(struct http_req *req);
void e2b_process_update(struct http_req *req); /* a pty's size */
void e2b_process_list(struct http_req *req);
void e2b_process_connect(struct http_req *req);
void e2b_process_send_input(struct http_req *req);
void e2b_process_close_stdin(struct http_req *req);
void e2b_contexts_list(struct http_req *req);
void e2b_contexts_create(struct http_req *req);
void e2b_contexts_remove(struct http_req *req);  /* DELETE /contexts/{id} */
void e2b_contexts_restart(struct http_req *req); /* POST /contexts/{id}/restart */

/* The sandbox of a data-plane call, from the E2b-Sandbox-Id header (in
 * E2B's cloud it is in the host name), into req->param; a port named in
 * E2b-Sandbox-Port must be this one (the seal: no other port is served).
 * false after replying. */
bool e2b_route_sandbox(struct http_req *req, int port);

/* e2b_files.c: /files and filesystem.Filesystem */
void e2b_files_get(struct http_req *req);
void e2b_files_post_begin(struct http_req *req);
void e2b_files_post_data(struct http_req *req, const char *data, size_t size);
void e2b_files_post_end(struct http_req *req);
void e2b_files_post_cleanup(struct http_req *req);
void e2b_fs_list(struct http_req *req);
void e2b_fs_stat(struct http_req *req);
void e2b_fs_make_dir(struct http_req *req);
void e2b_fs_move(struct http_req *req);
void e2b_fs_remove(struct http_req *req);
void e2b_fs_watch_dir(struct http_req *req); /* e2b_envd.c: the envelope */
/* e2b_watch.c: the stream of WatchDir's request msg, for req->param */
void e2b_fs_watch(struct http_req *req, json_t *msg);

#endif
