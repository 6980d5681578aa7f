#include "operr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>


int op_error_set(struct op_error *e, int ret, enum err_code code, const char *fmt, ...)
{
    if (!e)
        return ret;
    e->code = code;
    e->agent_code[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt ? fmt : "?", ap);
    va_end(ap);
    return ret;
}

int op_error_from_agent(struct op_error *e, const char *payload, size_t len)
{
    if (!e)
        return -EREMOTEIO;
    json_error_t jerr;
    json_t *j = json_loadb(payload, len, 0, &jerr);
    const char *code = j ? json_string_value(json_object_get(j, "code")) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    op_error_set(e, -EREMOTEIO, ERR_AGENT, "%s", msg && *msg ? msg : "the sandbox agent reported an error");
    /* a code too long to be one of ours is the agent's bug: kept empty, so
     * the API layer answers it as internal, like any unknown code */
    if (code && strlen(code) < sizeof(e->agent_code))
        snprintf(e->agent_code, sizeof(e->agent_code), "%s", code);
    json_decref(j);
    return -EREMOTEIO;
}

int op_error_audit(struct op_error *e, int r, const char *what)
{
    return op_error_set(e, r, ERR_AUDIT,
                        "%s was not done: its record cannot be written to the state database (%s); "
                        "GET /v1/healthz tells when it can again",
                        what, r == -ENOSPC ? "the state disk is full" : "database error");
}
