#include <errno.h>

#include "api_errors.h"
#include "errors.h"
#include "operr.h"
#include "unit.h"

int main(void)
{
    CHECK(api_status_for_agent_code("not_found") == 404);
    CHECK(api_status_for_agent_code("invalid_request") == 400);
    CHECK(api_status_for_agent_code("path_escape") == 400);
    CHECK(api_status_for_agent_code("payload_too_large") == 413);
    CHECK(api_status_for_agent_code("no_space") == 507);
    CHECK(api_status_for_agent_code("is_directory") == 409);
    CHECK(api_status_for_agent_code("not_directory") == 409);
    CHECK(api_status_for_agent_code("exists") == 409);
    CHECK(api_status_for_agent_code("busy") == 409);
    CHECK(api_status_for_agent_code("internal") == 500);
    CHECK(api_status_for_agent_code("whatever") == 500);
    CHECK(api_status_for_agent_code(NULL) == 500);

    struct api_error err = {0};
    const char ok[] = "{\"code\":\"no_space\",\"message\":\"/tmp is full\"}";
    CHECK(api_error_from_agent(&err, ok, sizeof(ok) - 1) == -EREMOTEIO);
    CHECK(err.status == 507);
    CHECK_STREQ(err.code, "no_space");
    CHECK_STREQ(err.message, "/tmp is full");

    /* junk from the agent still yields a well-formed error */
    const char junk[] = "\xff\xfe not json";
    CHECK(api_error_from_agent(&err, junk, sizeof(junk) - 1) == -EREMOTEIO);
    CHECK(err.status == 500);
    CHECK_STREQ(err.code, "internal");

    const char odd[] = "{\"code\":\"rm_rf\",\"message\":\"x\"}";
    api_error_from_agent(&err, odd, sizeof(odd) - 1);
    CHECK(err.status == 500);
    CHECK_STREQ(err.code, "internal");

    CHECK(api_error_set(&err, -ENOENT, 404, "not_found", "no sandbox %s", "sb_x") == -ENOENT);
    json_t *j = api_error_json(&err);
    CHECK(j != NULL);
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "not_found");
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "no sandbox sb_x");
    json_decref(j);

    /* a message cut inside a multi-byte character stays valid UTF-8 */
    char longmsg[600];
    memset(longmsg, 'a', sizeof(longmsg));
    for (size_t i = 509; i + 3 < sizeof(longmsg); i += 3)
        memcpy(longmsg + i, "\xE2\x82\xAC", 3);
    longmsg[sizeof(longmsg) - 1] = '\0';
    for (int shift = 0; shift < 3; shift++) {
        api_error_set(&err, -1, 500, "internal", "%s", longmsg + shift);
        j = api_error_json(&err);
        CHECK(j != NULL);
        json_decref(j);
    }

    /* a message quoting bytes the client sent that are not UTF-8 (found by
     * fuzz_http: "no route GET /v1/sandboxes/x/file\x84"): still an envelope,
     * the bad byte replaced */
    api_error_set(&err, -ENOENT, 404, "not_found", "no route GET %s", "/v1/file\x84s");
    j = api_error_json(&err);
    CHECK(j != NULL);
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                "no route GET /v1/file\xEF\xBF\xBDs");
    json_decref(j);

    /* operation errors (operr.h) answered by the API layer: every code a
     * client sees stays what it was when the layers below chose statuses */
    static const struct {
        enum err_code code;
        unsigned status;
        const char *api_code;
    } map[] = {
        {ERR_INTERNAL, 500, "internal"},          {ERR_NOT_FOUND, 404, "not_found"},
        {ERR_EXPIRED, 410, "sandbox_expired"},    {ERR_SHUTTING_DOWN, 503, "unavailable"},
        {ERR_AGENT_GONE, 503, "unavailable"},     {ERR_AGENT_TIMEOUT, 503, "unavailable"},
        {ERR_TOO_LARGE, 413, "payload_too_large"}, {ERR_QUOTA, 429, "quota_exceeded"},
        {ERR_KEY_QUOTA, 429, "sandbox_quota"},    {ERR_AUDIT, 503, "audit_unavailable"},
        {ERR_WARMUP, 422, "warmup_failed"},       {ERR_NO_TEMPLATE, 404, "template_not_found"},
        {ERR_TEMPLATE_CORRUPT, 409, "template_corrupt"}, {ERR_TEMPLATE_IN_USE, 409, "template_in_use"},
        {ERR_INVALID_SPEC, 400, "invalid_spec"},  {ERR_BUILDS_OFF, 503, "unavailable"},
        {ERR_BUILD_BUSY, 409, "build_in_progress"}, {ERR_TOO_MANY_BUILDS, 429, "too_many_builds"},
        {ERR_PAUSED, 409, "sandbox_paused"},      {ERR_BUSY, 409, "sandbox_busy"},
        {ERR_NO_PAUSE, 409, "pause_unavailable"},
        {ERR_NONE, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct op_error op = {0};
        CHECK(op_error_set(&op, -EIO, map[i].code, "step %zu failed", i) == -EIO);
        CHECK(api_error_from_op(&err, -EIO, &op) == -EIO);
        CHECK(err.status == map[i].status);
        CHECK_STREQ(err.code, map[i].api_code);
        char want[32];
        snprintf(want, sizeof(want), "step %zu failed", i);
        CHECK_STREQ(err.message, want);
    }
    /* an agent's error keeps its code when the protocol knows it, else internal */
    struct op_error op = {0};
    const char agent_ok[] = "{\"code\":\"path_forbidden\",\"message\":\"/proc is not yours\"}";
    CHECK(op_error_from_agent(&op, agent_ok, sizeof(agent_ok) - 1) == -EREMOTEIO);
    CHECK(op.code == ERR_AGENT);
    api_error_from_op(&err, -EREMOTEIO, &op);
    CHECK(err.status == 400);
    CHECK_STREQ(err.code, "path_forbidden");
    CHECK_STREQ(err.message, "/proc is not yours");
    CHECK(op_error_from_agent(&op, odd, sizeof(odd) - 1) == -EREMOTEIO);
    api_error_from_op(&err, -EREMOTEIO, &op);
    CHECK(err.status == 500);
    CHECK_STREQ(err.code, "internal");
    CHECK(op_error_from_agent(&op, junk, sizeof(junk) - 1) == -EREMOTEIO);
    api_error_from_op(&err, -EREMOTEIO, &op);
    CHECK(err.status == 500);
    CHECK_STREQ(err.code, "internal");
    CHECK_STREQ(err.message, "the sandbox agent reported an error");
    op_error_audit(&op, -ENOSPC, "the create");
    api_error_from_op(&err, -ENOSPC, &op);
    struct api_error old = {0};
    api_error_audit(&old, -ENOSPC, "the create");
    CHECK(err.status == old.status);
    CHECK_STREQ(err.code, old.code);
    CHECK_STREQ(err.message, old.message);
    /* a long message cut inside a multi-byte character still makes JSON */
    for (int shift = 0; shift < 3; shift++) {
        op_error_set(&op, -1, ERR_INTERNAL, "%s", longmsg + shift);
        api_error_from_op(&err, -1, &op);
        j = api_error_json(&err);
        CHECK(j != NULL);
        json_decref(j);
    }
    UNIT_DONE();
}
