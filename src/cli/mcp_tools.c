/* mcp_tools.c - the tools `airlock mcp` offers, each a call (or two) to
 * airlockd's REST API (docs/api.md) on the session's sandbox.
 *
 * The model gives code, commands, paths and file contents; nothing it sends
 * reaches the sandbox's shape (template, limits, egress, lifetime), which
 * comes from the server's flags (mcp_session.c). Every failure, from a bad
 * argument to an unreachable daemon, is a result with isError: true, so the
 * model reads what went wrong and the session goes on.
 */
#include "mcp.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef json_t *(*tool_fn)(struct mcp_session *s, json_t *args);

struct tool {
    const char *name, *title, *description;
    json_t *(*schema)(void);
    bool read_only;
    tool_fn call;
};

/* ---- helpers --------------------------------------------------------- */

/* The error of the last request, as a tool error. A sandbox airlockd says
 * is gone is forgotten, so the next call starts a fresh one. */
static json_t *api_error(struct mcp_session *s, const char *what)
{
    const struct client_error *e = &s->client.err;
    const char *child = NULL;
    for (unsigned i = 0; i < s->n_children && !child; i++)
        if (strstr(e->message, s->children[i]))
            child = s->children[i];
    if ((e->status == 404 || e->status == 410) && child)
        mcp_session_child_forget(s, child); /* a fork's child that is gone */
    else if (e->status == 404 && s->sandbox_id && strstr(e->message, s->sandbox_id))
        mcp_session_lost(s);
    else if (e->status == 410)
        mcp_session_lost(s);
    if (e->status == 0 && strcmp(e->code, "connection") == 0)
        return mcp_tool_error("%s: cannot reach airlockd: %s", what, e->message);
    if (e->code[0])
        return mcp_tool_error("%s: %s (%s)", what, e->message, e->code);
    return mcp_tool_error("%s: %s", what, e->message);
}

/* args[name] as a C string: NULL when absent, not a string, or holding a
 * NUL (which would cut a path short). */
static const char *str_arg(json_t *args, const char *name)
{
    json_t *v = json_object_get(args, name);
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

/* The sandbox a tool call acts on: args' "sandbox" (a child the fork tool
 * made in this session: no other id is accepted, so a model cannot reach a
 * sandbox the session did not make), else the session's own. NULL with
 * *err set to the tool error. */
static const char *sandbox_for_call(struct mcp_session *s, json_t *args, const char **note, json_t **err)
{
    json_t *want = json_object_get(args, "sandbox");
    if (want && !json_is_null(want)) {
        *note = NULL;
        const char *child = mcp_session_child(s, json_string_value(want));
        if (!child) {
            *err = mcp_tool_error("\"sandbox\" must be the id of a sandbox the fork tool made in this session "
                                  "(%u live); leave it out for the session's own sandbox", s->n_children);
            return NULL;
        }
        /* its lifetime counts again from now, like the session's own */
        cleanup_free char *path = client_sandbox_path(&s->client, child, "/timeout", NULL);
        json_auto_t *body = json_pack("{s:I}", "timeout_s", (json_int_t)s->cfg->lifetime_s);
        if (!path || !body || client_json(&s->client, "POST", path, body, NULL, NULL) < 0) {
            *err = api_error(s, "this sandbox cannot be used");
            return NULL;
        }
        return child;
    }
    if (mcp_session_sandbox(s, note) < 0) {
        *err = api_error(s, "could not get this session's sandbox");
        return NULL;
    }
    return s->sandbox_id;
}

/* The finishing touches of every result from a sandbox: the note about a
 * replaced sandbox first, and the sandbox's id in _meta (for clients and
 * tests that want to find it through the REST API). */
static json_t *finish(struct mcp_session *s, const char *id, json_t *result, const char *note)
{
    if (!result)
        return NULL;
    if (note)
        json_array_insert_new(json_object_get(result, "content"), 0, json_pack("{s:s, s:s}", "type", "text", "text", note));
    if (!id)
        id = s->sandbox_id;
    if (id)
        json_object_set_new(result, "_meta", json_pack("{s:s}", "airlock/sandbox_id", id));
    return result;
}

/* ---- run_python / run_bash -------------------------------------------- */

static json_t *run(struct mcp_session *s, json_t *args, const char *suffix, json_t *body, bool is_exec,
                   const char *what)
{
    const char *note;
    json_t *err = NULL;
    const char *id = sandbox_for_call(s, args, &note, &err);
    if (!id)
        return err;
    cleanup_free char *path = client_sandbox_path(&s->client, id, suffix, NULL);
    json_auto_t *answer = NULL;
    if (!path || client_json(&s->client, "POST", path, body, &answer, NULL) < 0)
        return finish(s, id, api_error(s, what), note);
    json_t *result = mcp_result_new();
    if (result && mcp_add_run_result(result, answer, is_exec) < 0) {
        json_decref(result);
        return mcp_tool_error("%s: out of memory building the result", what);
    }
    return finish(s, id, result, note);
}

static json_t *python_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}}, s:[s], s:b}", "type", "object", "properties", "code", "type", "string",
                     "description", "Python code to run. The last expression's value is returned as the result.",
                     "required", "code", "additionalProperties", 0);
}

static json_t *run_python(struct mcp_session *s, json_t *args)
{
    const char *code = str_arg(args, "code");
    if (!code)
        return mcp_tool_error("run_python needs \"code\": the Python code to run, as a string without NUL "
                              "characters");
    json_auto_t *body = json_pack("{s:s, s:s, s:I}", "code", code, "language", "python", "timeout_s",
                                  (json_int_t)s->cfg->call_timeout_s);
    return body ? run(s, args, "/code", body, false, "run_python failed") : NULL;
}

static json_t *bash_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type", "object", "properties", "command",
                     "type", "string", "description", "A bash command line (run with bash -c).", "cwd", "type",
                     "string", "description", "Working directory (default /home/user; relative to it).", "required",
                     "command", "additionalProperties", 0);
}

static json_t *run_bash(struct mcp_session *s, json_t *args)
{
    const char *command = str_arg(args, "command");
    if (!command)
        return mcp_tool_error("run_bash needs \"command\": a bash command line, as a string without NUL "
                              "characters");
    json_t *cwd = json_object_get(args, "cwd");
    if (cwd && !json_is_null(cwd) && !str_arg(args, "cwd"))
        return mcp_tool_error("run_bash: \"cwd\" must be a string (without NUL characters)");
    json_auto_t *body = json_pack("{s:s, s:I}", "cmd", command, "timeout_s", (json_int_t)s->cfg->call_timeout_s);
    if (!body || (json_is_string(cwd) && json_object_set(body, "cwd", cwd) < 0))
        return NULL;
    return run(s, args, "/exec", body, true, "run_bash failed");
}

/* ---- upload_file ---------------------------------------------------------- */

static json_t *upload_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type", "object",
                     "properties", "path", "type", "string", "description",
                     "Where to write the file in the sandbox: absolute, or relative to /home/user. Writable: "
                     "/home/user, /data, /tmp. Missing directories are created.",
                     "content", "type", "string", "description", "The file's content as UTF-8 text.",
                     "content_base64", "type", "string", "description",
                     "The file's content as standard base64 (for binary files), instead of content.", "required",
                     "path", "additionalProperties", 0);
}

/* The file's bytes from the arguments: 0, or a tool error in *err. */
static int upload_bytes(json_t *args, unsigned char **data, size_t *len, json_t **err)
{
    json_t *text = json_object_get(args, "content"), *b64 = json_object_get(args, "content_base64");
    /* models often send the unused one as null */
    if (json_is_null(text))
        text = NULL;
    if (json_is_null(b64))
        b64 = NULL;
    *data = NULL;
    if (!!json_is_string(text) == !!json_is_string(b64) || (text && !json_is_string(text)) ||
        (b64 && !json_is_string(b64))) {
        *err = mcp_tool_error("upload_file needs exactly one of \"content\" (text) or \"content_base64\" (base64), "
                              "as a string");
        return -1;
    }
    if (text) {
        *len = json_string_length(text);
        *data = malloc(*len + 1);
        if (!*data)
            return -1;
        memcpy(*data, json_string_value(text), *len);
        return 0;
    }
    if (mcp_base64_decode(json_string_value(b64), json_string_length(b64), data, len) < 0) {
        *err = mcp_tool_error("upload_file: \"content_base64\" is not valid standard base64 "
                              "(A-Z a-z 0-9 + /, '=' padding, no line breaks)");
        return -1;
    }
    return 0;
}

static json_t *upload_file(struct mcp_session *s, json_t *args)
{
    const char *remote = str_arg(args, "path");
    if (!remote || !*remote)
        return mcp_tool_error("upload_file needs \"path\": where to write the file in the sandbox, a string "
                              "without NUL characters");
    cleanup_free unsigned char *data = NULL;
    size_t len = 0;
    json_t *err = NULL;
    if (upload_bytes(args, &data, &len, &err) < 0)
        return err;
    const char *note;
    const char *id = sandbox_for_call(s, args, &note, &err);
    if (!id)
        return err;
    /* fmemopen refuses a size of 0: an empty file is /dev/null's content */
    FILE *f = len ? fmemopen(data, len, "rb") : fopen("/dev/null", "rb");
    if (!f)
        return mcp_tool_error("upload_file: cannot stage the content: %s", strerror(errno));
    cleanup_free char *path = client_sandbox_path(&s->client, id, "/files", remote);
    json_auto_t *answer = NULL;
    int r = path ? client_upload(&s->client, path, f, (curl_off_t)len, &answer) : -1;
    fclose(f);
    if (r < 0)
        return finish(s, id, api_error(s, "upload_file failed"), note);
    const char *abs = json_string_value(json_object_get(answer, "path"));
    json_t *result = mcp_result_new();
    if (result && mcp_add_textf(result, "wrote %zu bytes to %s", len, abs ? abs : remote) < 0) {
        json_decref(result);
        return NULL;
    }
    return finish(s, id, result, note);
}

/* ---- download_file ------------------------------------------------------ */

static json_t *path_schema(const char *what)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}}, s:[s], s:b}", "type", "object", "properties", "path", "type", "string",
                     "description", what, "required", "path", "additionalProperties", 0);
}

static json_t *download_schema(void)
{
    return path_schema("The file to read: absolute, or relative to /home/user.");
}

/* A memory sink that refuses to grow past its cap, so a huge file ends the
 * transfer instead of this process's memory. */
struct capped {
    char *p;
    size_t len, cap;
    bool over;
};

static ssize_t capped_write(void *cookie, const char *buf, size_t n)
{
    struct capped *c = cookie;
    if (c->len + n > c->cap) {
        c->over = true;
        errno = EFBIG;
        return -1;
    }
    char *p = realloc(c->p, c->len + n + 1);
    if (!p)
        return -1;
    memcpy(p + c->len, buf, n);
    c->p = p;
    c->len += n;
    p[c->len] = '\0';
    return (ssize_t)n;
}

static const struct {
    const char *ext, *mime;
} mime_types[] = {
    {".csv", "text/csv"},         {".tsv", "text/tab-separated-values"}, {".txt", "text/plain"},
    {".md", "text/markdown"},     {".json", "application/json"},         {".html", "text/html"},
    {".py", "text/x-python"},     {".sh", "text/x-shellscript"},         {".xml", "application/xml"},
    {".svg", "image/svg+xml"},    {".png", "image/png"},                 {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},      {".gif", "image/gif"},                 {".webp", "image/webp"},
    {".pdf", "application/pdf"},  {".zip", "application/zip"},
    {".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
};

static const char *guess_mime(const char *path, const char *data, size_t len)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && !strchr(dot, '/') && i < ARRAY_SIZE(mime_types); i++)
        if (strcasecmp(dot, mime_types[i].ext) == 0)
            return mime_types[i].mime;
    json_auto_t *utf8 = memchr(data, '\0', len) ? NULL : json_stringn(data, len);
    return utf8 ? "text/plain" : "application/octet-stream";
}

static json_t *download_file(struct mcp_session *s, json_t *args)
{
    const char *remote = str_arg(args, "path");
    if (!remote || !*remote)
        return mcp_tool_error("download_file needs \"path\": the file to read in the sandbox, a string without "
                              "NUL characters");
    const char *note;
    json_t *err = NULL;
    const char *id = sandbox_for_call(s, args, &note, &err);
    if (!id)
        return err;
    struct capped sink = {.cap = (size_t)s->cfg->max_file_bytes};
    FILE *f = fopencookie(&sink, "wb", (cookie_io_functions_t){.write = capped_write});
    if (!f)
        return mcp_tool_error("download_file: %s", strerror(errno));
    cleanup_free char *path = client_sandbox_path(&s->client, id, "/files", remote);
    int r = path ? client_download(&s->client, path, f) : -1;
    fclose(f);
    cleanup_free char *data = sink.p;
    if (sink.over)
        return finish(s, id, mcp_tool_error("download_file: %s is larger than this server's limit of %ld bytes "
                                        "(--max-file-mb); read a part of it with run_bash or run_python instead",
                                        remote, s->cfg->max_file_bytes), note);
    if (r < 0)
        return finish(s, id, api_error(s, "download_file failed"), note);
    if (!data && !(data = strdup("")))
        return NULL;
    cleanup_free char *uri = NULL;
    if (asprintf(&uri, "airlock://sandbox%s%s", remote[0] == '/' ? "" : "/home/user/", remote) < 0) {
        uri = NULL;
        return NULL;
    }
    const char *mime = guess_mime(remote, data, sink.len);
    json_t *result = mcp_result_new();
    int bad = !result;
    if (!bad && strncmp(mime, "image/", 6) == 0 && strcmp(mime, "image/svg+xml") != 0) {
        /* an image the model can look at */
        cleanup_free char *b64 = mcp_base64_encode((unsigned char *)data, sink.len);
        bad = !b64 || mcp_add_image(result, mime, b64) < 0;
    } else if (!bad) {
        bad = mcp_add_resource(result, uri, mime, data, sink.len) < 0;
    }
    if (bad) {
        json_decref(result);
        return NULL;
    }
    return finish(s, id, result, note);
}

/* ---- list_files ---------------------------------------------------------- */

static json_t *list_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}}, s:b}", "type", "object", "properties", "path", "type", "string",
                     "description", "The directory to list (default /home/user).", "additionalProperties", 0);
}

static json_t *list_files(struct mcp_session *s, json_t *args)
{
    json_t *p = json_object_get(args, "path");
    if (p && !json_is_null(p) && !str_arg(args, "path"))
        return mcp_tool_error("list_files: \"path\" must be a string (without NUL characters)");
    const char *dir = json_is_string(p) && *json_string_value(p) ? json_string_value(p) : "/home/user";
    const char *note;
    json_t *err = NULL;
    const char *id = sandbox_for_call(s, args, &note, &err);
    if (!id)
        return err;
    cleanup_free char *path = client_sandbox_path(&s->client, id, "/files/list", dir);
    json_auto_t *answer = NULL;
    if (!path || client_json(&s->client, "GET", path, NULL, &answer, NULL) < 0)
        return finish(s, id, api_error(s, "list_files failed"), note);
    /* one line per entry, as `ls -l` would say it, directories with a '/' */
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    if (!out)
        return NULL;
    const char *abs = json_string_value(json_object_get(answer, "path"));
    json_t *entries = json_object_get(answer, "entries");
    fprintf(out, "%s (%zu entries)\n", abs ? abs : dir, json_array_size(entries));
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        fprintf(out, "%-7s %12lld  %s%s\n", type ? type : "?", (long long)json_integer_value(json_object_get(e, "size")),
                json_string_value(json_object_get(e, "name")) ?: "?", type && strcmp(type, "dir") == 0 ? "/" : "");
    }
    int bad = fclose(out) != 0;
    cleanup_free char *owned = text;
    json_t *result = bad ? NULL : mcp_result_new();
    if (result && mcp_add_text(result, owned) < 0) {
        json_decref(result);
        return NULL;
    }
    return finish(s, id, result, note);
}

/* ---- fork / diff / merge_into (docs/mcp.md, "Fork") -------------------------- */

static json_t *fork_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:i, s:i, s:s}}, s:b}", "type", "object", "properties", "n", "type", "integer",
                     "minimum", 1, "maximum", MCP_MAX_CHILDREN, "description",
                     "How many copies to make (default 1).", "additionalProperties", 0);
}

static json_t *fork_tool(struct mcp_session *s, json_t *args)
{
    json_t *jn = json_object_get(args, "n");
    json_int_t n = jn && !json_is_null(jn) ? (json_is_integer(jn) ? json_integer_value(jn) : -1) : 1;
    if (n < 1 || n > MCP_MAX_CHILDREN || s->n_children + (unsigned)n > MCP_MAX_CHILDREN)
        return mcp_tool_error("fork: \"n\" must be 1..%d, and a session holds at most %d forked sandboxes (%u now)",
                              MCP_MAX_CHILDREN, MCP_MAX_CHILDREN, s->n_children);
    const char *note;
    json_t *err = NULL;
    const char *id = sandbox_for_call(s, args, &note, &err);
    if (!id)
        return err;
    cleanup_free char *path = client_sandbox_path(&s->client, id, "/fork", NULL);
    json_auto_t *body = json_pack("{s:I}", "n", n);
    json_auto_t *answer = NULL;
    if (!path || !body || client_json(&s->client, "POST", path, body, &answer, NULL) < 0)
        return finish(s, id, api_error(s, "fork failed"), note);
    const char *state = json_string_value(json_object_get(answer, "state"));
    json_t *result = mcp_result_new();
    if (!result)
        return NULL;
    mcp_add_textf(result, "%s: %lld copies of sandbox %s, each holding %s. Pass one as \"sandbox\" to the other "
                          "tools; merge_into commits one back.",
                  "forked", (long long)n, id,
                  state && strcmp(state, "full") == 0 ? "its whole state (variables, imports, files)"
                                                      : "a copy of its files (/tmp, /data, /home/user) and a fresh "
                                                        "Python interpreter");
    json_t *ids = json_array();
    size_t i;
    json_t *sb;
    json_array_foreach(json_object_get(answer, "sandboxes"), i, sb)
    {
        const char *kid = json_string_value(json_object_get(sb, "id"));
        if (!kid)
            continue;
        /* held within the cap checked above; an allocation failure leaves
         * it to its own expiry, said in the result */
        if (mcp_session_child_add(s, kid) < 0)
            mcp_add_textf(result, "warning: %s is not tracked by this session (it expires on its own)", kid);
        mcp_add_textf(result, "%s", kid);
        json_array_append_new(ids, json_string(kid));
    }
    finish(s, id, result, note);
    json_object_set_new(json_object_get(result, "_meta"), "airlock/children", ids);
    return result;
}

static json_t *child_schema(const char *what)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}}, s:[s], s:b}", "type", "object", "properties", "sandbox", "type",
                     "string", "description", what, "required", "sandbox", "additionalProperties", 0);
}

static json_t *diff_schema(void) { return child_schema("A sandbox the fork tool made, compared with this session's."); }
static json_t *merge_schema(void)
{
    return child_schema("A sandbox the fork tool made: its files replace this session's, then it is destroyed.");
}

/* The session's own sandbox and the child args names, both checked. */
static int pair(struct mcp_session *s, json_t *args, const char **mine, const char **child, const char **note,
                json_t **err)
{
    if (!(*child = sandbox_for_call(s, args, note, err)))
        return -1;
    if (*child == s->sandbox_id || !mcp_session_child(s, *child)) {
        *err = mcp_tool_error("\"sandbox\" must be the id of a sandbox the fork tool made in this session");
        return -1;
    }
    json_t *none = json_object();
    *mine = sandbox_for_call(s, none, note, err);
    json_decref(none);
    return *mine ? 0 : -1;
}

static json_t *diff_tool(struct mcp_session *s, json_t *args)
{
    const char *mine, *child, *note;
    json_t *err = NULL;
    if (pair(s, args, &mine, &child, &note, &err) < 0)
        return err;
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/diff/%s", child);
    cleanup_free char *path = client_sandbox_path(&s->client, mine, suffix, NULL);
    json_auto_t *answer = NULL;
    if (!path || client_json(&s->client, "GET", path, NULL, &answer, NULL) < 0)
        return finish(s, mine, api_error(s, "diff failed"), note);
    json_t *result = mcp_result_new();
    if (!result)
        return NULL;
    static const struct {
        const char *key, *mark, *size;
    } kinds[] = {{"added", "+", "size"}, {"removed", "-", "size"}, {"changed", "~", "size_b"}};
    unsigned lines = 0;
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(answer, kinds[k].key), i, e)
        {
            mcp_add_textf(result, "%s %s (%lld bytes)", kinds[k].mark, json_string_value(json_object_get(e, "path")),
                          (long long)json_integer_value(json_object_get(e, kinds[k].size)));
            lines++;
        }
    }
    if (!lines)
        mcp_add_text(result, "no differences in /tmp, /data, /home/user");
    return finish(s, mine, result, note);
}

static json_t *merge_tool(struct mcp_session *s, json_t *args)
{
    const char *mine, *child, *note;
    json_t *err = NULL;
    if (pair(s, args, &mine, &child, &note, &err) < 0)
        return err;
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/merge_into/%s", mine);
    cleanup_free char *path = client_sandbox_path(&s->client, child, suffix, NULL);
    json_auto_t *answer = NULL;
    if (!path || client_json(&s->client, "POST", path, NULL, &answer, NULL) < 0)
        return finish(s, mine, api_error(s, "merge_into failed"), note);
    json_t *result = mcp_result_new();
    if (!result)
        return NULL;
    mcp_add_textf(result, "merged %s into this session's sandbox: %lld files, %lld bytes; %s is destroyed. "
                          "Python state was not merged (files only).",
                  child, (long long)json_integer_value(json_object_get(answer, "files")),
                  (long long)json_integer_value(json_object_get(answer, "bytes")), child);
    char gone[64];
    snprintf(gone, sizeof(gone), "%s", child);
    mcp_session_child_forget(s, gone);
    return finish(s, mine, result, note);
}

/* ---- the table ------------------------------------------------------------ */

static const struct tool tools[] = {
    {"run_python", "Run Python",
     "Run Python code in this session's sandbox: one persistent interpreter, so variables, imports and "
     "definitions stay between calls. Returns stdout, stderr, the value of the last expression and rich "
     "results (matplotlib figures as images). pandas, numpy, matplotlib and scipy are usually installed. "
     "The sandbox has no network access.",
     python_schema, false, run_python},
    {"run_bash", "Run a shell command",
     "Run a bash command line in this session's sandbox (a fresh process each time; the files stay). "
     "Returns stdout, stderr and the exit code. The sandbox has no network access.",
     bash_schema, false, run_bash},
    {"upload_file", "Write a file into the sandbox",
     "Write a file into this session's sandbox, from text (content) or base64 (content_base64); "
     "then read it from run_python or run_bash.",
     upload_schema, false, upload_file},
    {"download_file", "Read a file from the sandbox",
     "Read a file from this session's sandbox: text files as an embedded resource, images as an image.",
     download_schema, true, download_file},
    {"list_files", "List a sandbox directory", "List a directory of this session's sandbox (default /home/user).",
     list_schema, true, list_files},
    {"fork", "Copy the sandbox",
     "Make n copies of this session's sandbox (or of \"sandbox\", a copy made earlier) to try different "
     "approaches side by side. Answers the copies' ids: pass one as \"sandbox\" to run_python, run_bash and "
     "the file tools. A copy holds the files; on VM sandboxes also the Python variables and imports.",
     fork_schema, false, fork_tool},
    {"diff", "Compare a copy's files",
     "List the files a copy made by fork added, removed or changed, relative to this session's sandbox.", diff_schema,
     true, diff_tool},
    {"merge_into", "Keep a copy's files",
     "Make this session's sandbox hold exactly the files of a copy made by fork (the winner), and destroy the "
     "copy.",
     merge_schema, false, merge_tool},
};

json_t *mcp_tools_list(void)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < ARRAY_SIZE(tools); i++) {
        json_t *schema = tools[i].schema();
        /* every tool may act on a fork's copy instead of the session's sandbox */
        json_t *props = json_object_get(schema, "properties");
        if (props && !json_object_get(props, "sandbox"))
            json_object_set_new(props, "sandbox",
                                json_pack("{s:s, s:s}", "type", "string", "description",
                                          "Optional: the id of a copy the fork tool made; default: this session's "
                                          "sandbox."));
        json_t *t = json_pack("{s:s, s:s, s:s, s:o, s:{s:b, s:b}}", "name", tools[i].name, "title",
                              tools[i].title, "description", tools[i].description, "inputSchema", schema,
                              "annotations", "readOnlyHint", tools[i].read_only, "openWorldHint", 0);
        if (json_array_append_new(list, t) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *mcp_tools_call(struct mcp_session *s, const char *name, json_t *args)
{
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
        if (strcmp(tools[i].name, name) != 0)
            continue;
        json_t *r = tools[i].call(s, args);
        return r ? r : mcp_tool_error("%s failed: out of memory", name);
    }
    return NULL;
}
