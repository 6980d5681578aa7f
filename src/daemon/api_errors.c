/* api_errors.c - the one place where an operation's error (operr.h) becomes
 * an HTTP status and an API error code. */
#include "api_errors.h"

#include <stddef.h>

static const struct {
    unsigned status;
    const char *code;
} op_map[] = {
    [ERR_NONE] = {500, "internal"},
    [ERR_INTERNAL] = {500, "internal"},
    [ERR_NOT_FOUND] = {404, "not_found"},
    [ERR_EXPIRED] = {410, "sandbox_expired"},
    [ERR_SHUTTING_DOWN] = {503, "unavailable"},
    [ERR_AGENT_GONE] = {503, "unavailable"},
    [ERR_AGENT_TIMEOUT] = {503, "unavailable"},
    [ERR_TOO_LARGE] = {413, "payload_too_large"},
    [ERR_AGENT] = {500, "internal"}, /* the agent's own code decides, below */
    [ERR_QUOTA] = {429, "quota_exceeded"},
    [ERR_KEY_QUOTA] = {429, "sandbox_quota"},
    [ERR_AUDIT] = {503, "audit_unavailable"},
    [ERR_WARMUP] = {422, "warmup_failed"},
    [ERR_NO_TEMPLATE] = {404, "template_not_found"},
    [ERR_TEMPLATE_CORRUPT] = {409, "template_corrupt"},
    [ERR_TEMPLATE_IN_USE] = {409, "template_in_use"},
    [ERR_INVALID_SPEC] = {400, "invalid_spec"},
    [ERR_BUILDS_OFF] = {503, "unavailable"},
    [ERR_BUILD_BUSY] = {409, "build_in_progress"},
    [ERR_TOO_MANY_BUILDS] = {429, "too_many_builds"},
    [ERR_PAUSED] = {409, "sandbox_paused"},
    [ERR_BUSY] = {409, "sandbox_busy"},
    [ERR_NO_PAUSE] = {409, "pause_unavailable"},
    [ERR_NOT_FAMILY] = {409, "not_same_family"},
    [ERR_FORK_FAILED] = {500, "fork_failed"},
};

int api_error_from_op(struct api_error *err, int ret, const struct op_error *op)
{
    unsigned status = 500;
    const char *code = "internal";
    if (op->code == ERR_AGENT) {
        /* passed through when it is one of the protocol's codes; an unknown
         * one is the agent's bug: internal, its text kept */
        status = api_status_for_agent_code(op->agent_code);
        if (status != 500)
            code = op->agent_code;
    } else if ((size_t)op->code < sizeof(op_map) / sizeof(op_map[0]) && op_map[op->code].code) {
        status = op_map[op->code].status;
        code = op_map[op->code].code;
    }
    return api_error_set(err, ret, status, code, "%s", op->msg[0] ? op->msg : "internal error");
}
