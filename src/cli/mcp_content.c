/* mcp_content.c - airlockd's answers as MCP tool results (CallToolResult):
 * a "content" array of text, image and embedded-resource blocks, and
 * isError: true when the run failed, so the model sees the failure as the
 * tool's answer rather than a broken connection. */
#include "mcp.h"

#include "util.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

json_t *mcp_result_new(void)
{
    return json_pack("{s:[]}", "content");
}

static int add_block(json_t *result, json_t *block)
{
    if (!block)
        return -1;
    return json_array_append_new(json_object_get(result, "content"), block) == 0 ? 0 : -1;
}

int mcp_add_text(json_t *result, const char *text)
{
    return add_block(result, json_pack("{s:s, s:s}", "type", "text", "text", text));
}

int mcp_add_textf(json_t *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        text = NULL;
        return -1;
    }
    return mcp_add_text(result, text);
}

int mcp_add_image(json_t *result, const char *mime, const char *base64)
{
    return add_block(result, json_pack("{s:s, s:s, s:s}", "type", "image", "mimeType", mime, "data", base64));
}

int mcp_add_resource(json_t *result, const char *uri, const char *mime, const char *data, size_t len)
{
    /* text when the bytes are UTF-8 (jansson checks), else a base64 blob */
    json_t *text = memchr(data, '\0', len) ? NULL : json_stringn(data, len);
    json_t *res = json_pack("{s:s, s:s}", "uri", uri, "mimeType", mime);
    if (!res) {
        json_decref(text);
        return -1;
    }
    int bad;
    if (text) {
        bad = json_object_set_new(res, "text", text);
    } else {
        cleanup_free char *b64 = mcp_base64_encode((const unsigned char *)data, len);
        bad = !b64 || json_object_set_new(res, "blob", json_string(b64));
    }
    if (bad) {
        json_decref(res);
        return -1;
    }
    return add_block(result, json_pack("{s:s, s:o}", "type", "resource", "resource", res));
}

json_t *mcp_tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        text = NULL;
    json_t *r = mcp_result_new();
    if (!r || mcp_add_text(r, text ? text : "tool failed (out of memory)") < 0 ||
        json_object_set_new(r, "isError", json_true()) < 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* ---- run results ----------------------------------------------------- */

static const char *const image_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp"};

/* One rich result (a MIME bundle): an image if it has one (a matplotlib
 * figure's text/plain is only "<Figure ...>"), else its best text form. */
static int add_bundle(json_t *result, json_t *bundle)
{
    for (size_t i = 0; i < ARRAY_SIZE(image_types); i++) {
        const char *b64 = json_string_value(json_object_get(bundle, image_types[i]));
        if (b64)
            return mcp_add_image(result, image_types[i], b64);
    }
    static const char *const text_types[] = {"text/plain", "text/markdown", "text/latex", "image/svg+xml",
                                             "text/html"};
    for (size_t i = 0; i < ARRAY_SIZE(text_types); i++) {
        const char *t = json_string_value(json_object_get(bundle, text_types[i]));
        if (t)
            return mcp_add_text(result, t);
    }
    json_t *j = json_object_get(bundle, "application/json");
    if (j) {
        cleanup_free char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        return s ? mcp_add_text(result, s) : -1;
    }
    return 0;
}

static int set_error(json_t *result)
{
    return json_object_set_new(result, "isError", json_true());
}

int mcp_add_run_result(json_t *result, json_t *run, bool is_exec)
{
    int bad = 0;
    const char *out = json_string_value(json_object_get(run, "stdout"));
    const char *err = json_string_value(json_object_get(run, "stderr"));
    if (out && *out)
        bad |= mcp_add_text(result, out);
    if (json_is_true(json_object_get(run, "stdout_truncated")))
        bad |= mcp_add_text(result, "[stdout was truncated]");
    if (err && *err)
        bad |= mcp_add_textf(result, "[stderr]\n%s", err);
    if (json_is_true(json_object_get(run, "stderr_truncated")))
        bad |= mcp_add_text(result, "[stderr was truncated]");
    size_t i;
    json_t *bundle;
    json_array_foreach(json_object_get(run, "results"), i, bundle)
        bad |= add_bundle(result, bundle);

    json_t *e = json_object_get(run, "error");
    json_t *code = json_object_get(run, "exit_code");
    if (json_is_object(e)) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *value = json_string_value(json_object_get(e, "value"));
        const char *tb = json_string_value(json_object_get(e, "traceback"));
        /* the runner printed the traceback on stderr already: not twice */
        bool shown = !tb || !*tb || (err && strstr(err, tb));
        bad |= mcp_add_textf(result, "Error: %s: %s%s%s", name ? name : "Error", value ? value : "",
                             shown ? "" : "\n", shown ? "" : tb);
        bad |= set_error(result);
    } else if (json_is_true(json_object_get(run, "timed_out"))) {
        bad |= mcp_add_text(result, "Error: the call timed out and was stopped");
        bad |= set_error(result);
    } else if (is_exec && json_is_integer(code) && json_integer_value(code) != 0) {
        bad |= mcp_add_textf(result, "exit code: %lld", (long long)json_integer_value(code));
        bad |= set_error(result);
    }
    if (json_is_true(json_object_get(run, "repl_restarted")))
        bad |= mcp_add_text(result, "note: the Python REPL was restarted during or before this call; "
                                    "earlier variables, imports and definitions are lost.");
    if (json_array_size(json_object_get(result, "content")) == 0)
        bad |= mcp_add_text(result, "(no output)");
    return bad ? -1 : 0;
}

/* ---- base64 ------------------------------------------------------------ */

char *mcp_base64_encode(const unsigned char *data, size_t len)
{
    if (len > (size_t)INT32_MAX / 4 * 3 - 3)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int mcp_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    if (len % 4 || len > (size_t)INT32_MAX)
        return -EINVAL;
    /* EVP_DecodeBlock skips blanks and takes "====": only the alphabet,
     * then at most two '=' at the very end, are base64 */
    size_t pad = 0;
    while (pad < len && text[len - 1 - pad] == '=')
        pad++;
    if (pad > 2)
        return -EINVAL;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len - pad; i++)
        if (!text[i] || !strchr(alphabet, text[i]))
            return -EINVAL;
    cleanup_free unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) : 0;
    if (n < 0 || (size_t)n < pad)
        return -EINVAL;
    *out_len = (size_t)n - pad;
    *out = steal_ptr(&buf);
    return 0;
}
