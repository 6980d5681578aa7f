#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* vsnprintf may cut a multi-byte character in half; jansson would then refuse
 * the message. Drop an incomplete trailing sequence. */
static void trim_incomplete_utf8(char *s)
{
    size_t len = strlen(s), i = len, cont = 0;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && cont < 3) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && cont < need)
        s[i - 1] = '\0';
}

int api_error_set(struct api_error *err, int ret, unsigned status, const char *code, const char *fmt, ...)
{
    if (!err)
        return ret;
    err->status = status;
    snprintf(err->code, sizeof(err->code), "%s", code ? code : "internal");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt ? fmt : "?", ap);
    va_end(ap);
    trim_incomplete_utf8(err->message);
    return ret;
}

static const struct {
    const char *code;
    unsigned status;
} agent_codes[] = {
    {"not_found", 404},      {"invalid_request", 400}, {"path_escape", 400}, {"payload_too_large", 413},
    {"no_space", 507},       {"is_directory", 409},    {"not_directory", 409}, {"exists", 409},
    {"busy", 409},           {"internal", 500},        {"path_forbidden", 400}, {"digest_mismatch", 400},
    {"too_many_contexts", 429},
};

unsigned api_status_for_agent_code(const char *code)
{
    for (size_t i = 0; code && i < sizeof(agent_codes) / sizeof(agent_codes[0]); i++)
        if (strcmp(code, agent_codes[i].code) == 0)
            return agent_codes[i].status;
    return 500;
}

int api_error_from_agent(struct api_error *err, const char *payload, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(payload, len, 0, &jerr);
    const char *code = j ? json_string_value(json_object_get(j, "code")) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    unsigned status = api_status_for_agent_code(code);
    /* An unknown code is the agent's bug: report it as internal, keep its text. */
    if (status == 500)
        code = "internal";
    api_error_set(err, -EREMOTEIO, status, code, "%s", msg && *msg ? msg : "the sandbox agent reported an error");
    json_decref(j);
    return -EREMOTEIO;
}

json_t *api_error_json(const struct api_error *err)
{
    const char *code = err->code[0] ? err->code : "internal";
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", err->message);
    if (j)
        return j;
    /* A message that quotes the client (an URL, a method, a query key) may
     * not be UTF-8, which JSON cannot carry: replace the bad bytes rather
     * than fail the reply (http.c would answer 500 "out of memory"). */
    struct buf clean = {0};
    if (utf8_sanitize((const uint8_t *)err->message, strlen(err->message), true, &clean) < 0)
        return NULL;
    j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", clean.data ? clean.data : "");
    buf_free(&clean);
    return j;
}

int api_error_audit(struct api_error *err, int r, const char *what)
{
    return api_error_set(err, r, 503, "audit_unavailable",
                         "%s was not done: its record cannot be written to the state database (%s); "
                         "GET /v1/healthz tells when it can again",
                         what, r == -ENOSPC ? "the state disk is full" : "database error");
}
