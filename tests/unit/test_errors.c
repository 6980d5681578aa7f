#include <errno.h>

#include "errors.h"
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
    UNIT_DONE();
}
