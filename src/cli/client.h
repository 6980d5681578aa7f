/* client.h - the CLI's HTTP client for the Airlock REST API (docs/api.md).
 *
 * One libcurl easy handle per process, reused for every request so the
 * connection to airlockd is kept alive. `http://host:port` and
 * `unix:///path/to.sock` URLs are supported (the latter through
 * CURLOPT_UNIX_SOCKET_PATH).
 *
 * Every call returns 0 on a 2xx answer, CLIENT_EAPI when airlockd answered
 * with an error object, CLIENT_ETRANSPORT when it could not be reached or the
 * transfer broke. On failure c->err holds the code and message to print.
 */
#ifndef AIRLOCK_CLI_CLIENT_H
#define AIRLOCK_CLI_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

enum { CLIENT_OK = 0, CLIENT_EAPI = -1, CLIENT_ETRANSPORT = -2 };

struct client_error {
    long status;       /* HTTP status, 0 for transport errors */
    char code[64];     /* API error code, or "connection" */
    char message[1024];
    long retry_after_s; /* a 429's Retry-After, else 0 */
};

struct client {
    CURL *curl;
    char *base;        /* "http://host:port/prefix", no trailing slash */
    char *unix_path;   /* socket path for unix:// URLs, else NULL */
    char *auth;        /* "Authorization: Bearer ..." or NULL */
    /* When non-NULL and set, transfers in progress are aborted (Ctrl-C in `run`). */
    volatile sig_atomic_t *abort_flag;
    long timeout_s;    /* whole-transfer timeout, 0 = none */
    bool gzip;         /* downloads ask for gzip (libcurl inflates), uploads are sent gzip (--gzip) */
    struct client_error err;
    char curl_err[CURL_ERROR_SIZE];
};

/* Parse url (NULL: $AIRLOCK_URL or http://127.0.0.1:7070) and key (NULL:
 * $AIRLOCK_API_KEY). 0, or -1 with c->err set. */
int client_init(struct client *c, const char *url, const char *key);
void client_cleanup(struct client *c);

/* A request with an optional JSON body. On success *out (if out) is the parsed
 * answer, or NULL for an empty body. *raw_out (if raw_out) gets the raw body. */
int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **out,
                char **raw_out);

/* Callback for client_stream: one NDJSON event. Return 0 to continue. */
typedef int (*client_event_cb)(json_t *event, void *ud);
/* POST body (NULL: GET, no body) with Accept: application/x-ndjson, calling
 * cb for every line as it arrives. */
int client_stream(struct client *c, const char *path, json_t *body, client_event_cb cb, void *ud);

/* PUT the open file f (size bytes from its current position), read in chunks. */
int client_upload(struct client *c, const char *path, FILE *f, curl_off_t size, json_t **out);
/* GET path, writing the body to out as it arrives. */
int client_download(struct client *c, const char *path, FILE *out);

/* "/v1/sandboxes/<id><suffix>[?path=<escaped remote>]", NULL on OOM. */
char *client_sandbox_path(struct client *c, const char *id, const char *suffix, const char *remote_path);
/* prefix + the URL-escaped name ("/v1/keys/" + id), NULL on OOM. */
char *client_name_path(struct client *c, const char *prefix, const char *name);

/* Print "airlock: <message> (<code>)" to stderr; for a 429, what it means
 * and when to retry. */
void client_print_error(const struct client *c);

#endif
