/* test_mcp.c - the pure parts of `airlock mcp` (src/cli/mcp_*.c): JSON-RPC
 * handling that needs no airlockd, results as MCP content, base64. The
 * tools against a real daemon: tests/mcp/. */
#include <signal.h>
#include <stdlib.h>

#include "mcp.h"
#include "unit.h"
#include "util.h"

volatile sig_atomic_t g_interrupted; /* main.c's, which is not linked here */

static json_t *rpc(struct mcp_session *s, const char *text)
{
    return mcp_handle_text(s, text, strlen(text));
}

static long long err_code(json_t *answer)
{
    return json_integer_value(json_object_get(json_object_get(answer, "error"), "code"));
}

static void test_rpc(void)
{
    struct mcp_config cfg = {.url = "http://127.0.0.1:1", .lifetime_s = 60, .call_timeout_s = 5};
    struct mcp_session s;
    CHECK(mcp_session_init(&s, &cfg) == 0);

    json_t *a = rpc(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
                        "\"2025-06-18\",\"clientInfo\":{\"name\":\"unit\"}}}");
    json_t *res = json_object_get(a, "result");
    CHECK_STREQ(json_string_value(json_object_get(res, "protocolVersion")), "2025-06-18");
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "name")), "airlock");
    CHECK(json_object_get(json_object_get(res, "capabilities"), "tools") != NULL);
    CHECK_STREQ(s.client_name, "unit");
    json_decref(a);

    a = rpc(&s, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"1.0\"}}");
    CHECK_STREQ(json_string_value(json_object_get(json_object_get(a, "result"), "protocolVersion")), "2025-11-25");
    CHECK_STREQ(json_string_value(json_object_get(a, "id")), "x");
    json_decref(a);

    CHECK(rpc(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}") == NULL);
    CHECK(rpc(&s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}") == NULL); /* a response to us: dropped */

    a = rpc(&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    json_t *tools = json_object_get(json_object_get(a, "result"), "tools");
    CHECK(json_array_size(tools) == 8); /* five file and run tools, fork, diff, merge_into */
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        CHECK(json_is_string(json_object_get(t, "name")));
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(t, "inputSchema"), "type")), "object");
    }
    json_decref(a);

    struct {
        const char *msg;
        int code;
    } bad[] = {
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"}", RPC_METHOD_NOT_FOUND},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,", RPC_PARSE_ERROR},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", RPC_PARSE_ERROR}, /* duplicate key */
        {"[]", RPC_INVALID_REQUEST},
        {"42", RPC_INVALID_REQUEST},
        {"{\"id\":3,\"method\":\"ping\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":7}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":\"x\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{}}", RPC_INVALID_PARAMS},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}", RPC_INVALID_PARAMS},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"run_python\",\"arguments\":[1]}}",
         RPC_INVALID_PARAMS},
    };
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        a = rpc(&s, bad[i].msg);
        if (err_code(a) != bad[i].code)
            fprintf(stderr, "  %s: got %lld, want %d\n", bad[i].msg, err_code(a), bad[i].code);
        CHECK(err_code(a) == bad[i].code);
        CHECK(json_object_get(a, "id") != NULL);
        json_decref(a);
    }

    /* a bad argument is a tool error before any sandbox is asked for */
    a = rpc(&s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"run_python\"}}");
    res = json_object_get(a, "result");
    CHECK(json_is_true(json_object_get(res, "isError")));
    CHECK(s.sandbox_id == NULL);
    json_decref(a);

    a = rpc(&s, "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"n\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}]");
    CHECK(json_array_size(a) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(a, 1), "id")) == 6);
    json_decref(a);
    CHECK(rpc(&s, "[{\"jsonrpc\":\"2.0\",\"method\":\"n\"}]") == NULL);
    mcp_session_end(&s);
}

static json_t *content_of(const char *run_json, bool is_exec)
{
    json_auto_t *run = json_loads(run_json, 0, NULL);
    json_t *r = mcp_result_new();
    CHECK(run && r && mcp_add_run_result(r, run, is_exec) == 0);
    return r;
}

static const char *block(json_t *r, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(r, "content"), i), field));
}

static void test_content(void)
{
    json_t *r = content_of("{\"stdout\":\"hi\\n\",\"stderr\":\"\",\"results\":[{\"text/plain\":\"<Figure>\","
                           "\"image/png\":\"iVBO\"},{\"text/plain\":\"3\",\"text/html\":\"<b>3</b>\"}],\"error\":null}",
                           false);
    CHECK(json_array_size(json_object_get(r, "content")) == 3);
    CHECK_STREQ(block(r, 0, "text"), "hi\n");
    CHECK_STREQ(block(r, 1, "type"), "image");
    CHECK_STREQ(block(r, 1, "mimeType"), "image/png");
    CHECK_STREQ(block(r, 1, "data"), "iVBO");
    CHECK_STREQ(block(r, 2, "text"), "3");
    CHECK(json_object_get(r, "isError") == NULL);
    json_decref(r);

    /* the traceback is on stderr already: said once */
    r = content_of("{\"stdout\":\"\",\"stderr\":\"Traceback...\\nZeroDivisionError: division by zero\\n\","
                   "\"results\":[],\"error\":{\"name\":\"ZeroDivisionError\",\"value\":\"division by zero\","
                   "\"traceback\":\"Traceback...\\nZeroDivisionError: division by zero\\n\"}}",
                   false);
    CHECK(json_is_true(json_object_get(r, "isError")));
    CHECK_STREQ(block(r, 1, "text"), "Error: ZeroDivisionError: division by zero");
    json_decref(r);

    r = content_of("{\"stdout\":\"\",\"stderr\":\"\",\"results\":[],\"exit_code\":3,\"error\":null}", true);
    CHECK_STREQ(block(r, 0, "text"), "exit code: 3");
    CHECK(json_is_true(json_object_get(r, "isError")));
    json_decref(r);
    r = content_of("{\"stdout\":\"\",\"stderr\":\"\",\"results\":[],\"exit_code\":0,\"error\":null}", true);
    CHECK_STREQ(block(r, 0, "text"), "(no output)");
    CHECK(json_object_get(r, "isError") == NULL);
    json_decref(r);
    r = content_of("{\"stdout\":\"\",\"results\":[],\"exit_code\":124,\"timed_out\":true,\"error\":null}", true);
    CHECK(json_is_true(json_object_get(r, "isError")));
    json_decref(r);

    r = mcp_result_new();
    CHECK(mcp_add_resource(r, "airlock://sandbox/a.csv", "text/csv", "a,b\n", 4) == 0);
    CHECK(mcp_add_resource(r, "airlock://sandbox/b.bin", "application/octet-stream", "\xff\0\x01", 3) == 0);
    json_t *res0 = json_object_get(json_array_get(json_object_get(r, "content"), 0), "resource");
    json_t *res1 = json_object_get(json_array_get(json_object_get(r, "content"), 1), "resource");
    CHECK_STREQ(json_string_value(json_object_get(res0, "text")), "a,b\n");
    CHECK_STREQ(json_string_value(json_object_get(res1, "blob")), "/wAB");
    CHECK(json_object_get(res1, "text") == NULL);
    json_decref(r);
}

static void test_base64(void)
{
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        char *e = mcp_base64_encode((const unsigned char *)plain[i], strlen(plain[i]));
        CHECK_STREQ(e, coded[i]);
        free(e);
        unsigned char *d = NULL;
        size_t n = 99;
        CHECK(mcp_base64_decode(coded[i], strlen(coded[i]), &d, &n) == 0);
        CHECK(n == strlen(plain[i]) && d && memcmp(d, plain[i], n) == 0);
        free(d);
    }
    const char *bad[] = {"Zg=", "Zm9v\n", " Zm9", "Zm9v YmFy", "Zm9!", "====", "Z==="};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        unsigned char *d = NULL;
        size_t n;
        int rc = mcp_base64_decode(bad[i], strlen(bad[i]), &d, &n);
        if (rc == 0)
            fprintf(stderr, "  '%s' decoded\n", bad[i]);
        CHECK(rc < 0 && d == NULL);
    }
}

int main(void)
{
    test_rpc();
    test_content();
    test_base64();
    UNIT_DONE();
}
