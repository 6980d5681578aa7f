/* api_audit.c - the audit log fails closed (docs/api.md): an operation's
 * event is written before the operation, and an operation whose event
 * cannot be written is refused with 503 audit_unavailable and does not
 * happen. Its outcome is added to the same row afterwards (best effort: the
 * act is on record either way).
 */
#include "api.h"

#include "daemon.h"
#include "errors.h"
#include "http.h"
#include "store.h"

int api_audit_begin(struct http_req *req, const char *action, const char *sandbox_id, json_t *detail,
                    const char *what, int64_t *row)
{
    struct audit_rec a = {.key_id = req->key.id, .action = action, .sandbox_id = sandbox_id, .detail = detail};
    int r = store_audit_begin(req->d->store, &a, row);
    json_decref(detail);
    if (r < 0) {
        struct api_error err = {0};
        api_error_audit(&err, r, what ? what : action);
        http_reply_error(req, &err);
    }
    return r;
}

void api_audit_outcome(struct http_req *req, int64_t row, json_t *outcome)
{
    if (row > 0 && outcome)
        (void)store_audit_outcome(req->d->store, row, outcome);
    json_decref(outcome);
}
