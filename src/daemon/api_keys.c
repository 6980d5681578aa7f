/* api_keys.c - /v1/keys: create, list, revoke API keys (admin only; http.c
 * checks that). The clear key leaves the daemon once, in the create reply. */
#include <errno.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "log.h"
#include "util.h"

#define KEY_NAME_MAX 128

void api_keys_create(struct http_req *req)
{
    const char *name = NULL;
    bool admin = false;
    int r = api_field_string(req, "name", &name);
    if (r < 0)
        return;
    if (r > 0 || !*name || strlen(name) > KEY_NAME_MAX) {
        http_reply_errorf(req, 400, "invalid_request", "name is required (1 to %d characters)", KEY_NAME_MAX);
        return;
    }
    if (api_field_bool(req, "admin", &admin) < 0)
        return;

    char key[API_KEY_LEN + 1], id[KEY_ID_LEN + 1], hash[KEY_HASH_LEN + 1], ts[40];
    if (auth_new_key(key) < 0 || auth_new_key_id(id) < 0 || auth_hash_key(key, strlen(key), hash) < 0) {
        http_reply_errorf(req, 500, "internal", "generate a key");
        return;
    }
    uint64_t now = now_wall_ms();
    json_t *detail = json_pack("{s:s,s:s,s:b}", "id", id, "name", name, "admin", admin);
    struct audit_rec a = {.key_id = req->key.id, .action = "key_create", .detail = detail};
    r = store_key_insert(req->d->store, id, name, hash, admin, now, &a);
    json_decref(detail);
    if (r < 0) {
        struct api_error err = {0};
        api_error_audit(&err, r, "the key");
        http_reply_error(req, &err);
        return;
    }
    log_info("key %s (%s%s) created by %s", id, name, admin ? ", admin" : "", req->key.id);
    format_time(now, false, ts, sizeof(ts));
    http_reply_json(req, 201,
                    json_pack("{s:s,s:s,s:b,s:s,s:s}", "id", id, "name", name, "admin", admin, "key", key,
                              "created_at", ts));
    explicit_bzero(key, sizeof(key));
}

void api_keys_list(struct http_req *req)
{
    json_t *keys = NULL;
    if (store_key_list(req->d->store, &keys) < 0) {
        http_reply_errorf(req, 500, "internal", "list keys");
        return;
    }
    http_reply_json(req, 200, keys);
}

void api_keys_revoke(struct http_req *req)
{
    json_t *detail = json_pack("{s:s}", "id", req->param);
    struct audit_rec a = {.key_id = req->key.id, .action = "key_revoke", .detail = detail};
    int r = store_key_revoke(req->d->store, req->param, &a);
    json_decref(detail);
    if (r == -ENOENT) {
        http_reply_errorf(req, 404, "not_found", "no active key %s", req->param);
        return;
    }
    if (r < 0) {
        struct api_error err = {0};
        api_error_audit(&err, r, "the revocation");
        http_reply_error(req, &err);
        return;
    }
    log_info("key %s revoked by %s", req->param, req->key.id);
    http_reply_json(req, 200, json_pack("{s:s,s:b}", "id", req->param, "revoked", 1));
}
