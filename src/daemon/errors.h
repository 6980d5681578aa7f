/* errors.h - the API error every layer can fill and http.c turns into
 *   {"error": {"code": ..., "message": ...}} with its HTTP status.
 *
 * Functions below the HTTP layer return 0/-errno and, when the failure is
 * something the API client must see, also fill a struct api_error. The layer
 * that decides (usually api_*.c) logs once. */
#ifndef AIRLOCK_ERRORS_H
#define AIRLOCK_ERRORS_H

#include <jansson.h>

#define API_ERR_CODE_MAX 32
#define API_ERR_MSG_MAX 512

struct api_error {
    unsigned status;               /* 0: not set */
    char code[API_ERR_CODE_MAX];
    char message[API_ERR_MSG_MAX];
};

/* Fill err (if err is non-NULL) and return `ret`, so callers can write `return api_error_set(err, -ENOENT, 404, "not_found", "...")`. */
int api_error_set(struct api_error *err, int ret, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 503 audit_unavailable: `what` was refused (not done) because its state
 * record and audit event could not be written (r: -ENOSPC, the state disk
 * is full; else a database error). Returns r. */
int api_error_audit(struct api_error *err, int r, const char *what);

/* HTTP status of an agent error code (docs/protocol.md); 500 for unknown ones. */
unsigned api_status_for_agent_code(const char *code);

/* Fill err from an agent ERROR payload {"code","message"} (which may be junk:
 * the agent is only partly trusted). Returns -EREMOTEIO. */
int api_error_from_agent(struct api_error *err, const char *payload, size_t len);

/* {"error":{"code":..,"message":..}} (never NULL unless out of memory). */
json_t *api_error_json(const struct api_error *err);

#endif
