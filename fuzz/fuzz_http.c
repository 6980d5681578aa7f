/* fuzz_http.c - airlockd's request handling, end to end: the real
 * libmicrohttpd server of src/daemon/http.c with its routes, the Bearer
 * check, query and body parsing, every handler and the SQLite store, started
 * once in this process on a unix socket (state in a scratch directory, the
 * sandbox backend replaced by backend_none.c). Each input becomes one
 * connection carrying one HTTP request.
 *
 * The backend refuses to create sandboxes, so most inputs exercise the
 * daemon up to "no live sandbox". A "live" input instead talks to the one
 * sandbox this harness keeps (created on demand, re-created when an input
 * destroys it), whose agent is a scripted peer in this process: the daemon's
 * request frame gets the input's frames as the answer, so the handlers'
 * agent side (collected and streamed runs, downloads, uploads, list,
 * delete, info, mkdir, rename, watch, batch uploads, gzip both ways) sees
 * hostile agent output too.
 *
 * Input layout:
 *   byte 0   bits 0-1: 3 = raw (the rest of the input is sent as is, then the
 *            write side is shut); otherwise a request is built.
 *            bit 2: live (below); bit 3: the agent closes its stream after
 *            its script (the sandbox "crashes" mid-request)
 *   byte 1   bits 0-2 method (GET POST PUT DELETE HEAD OPTIONS PATCH, 7 =
 *            the method token is the first line), bits 3-4 Authorization
 *            (none, admin key, user key, "Bearer <token line>"), bit 5 send
 *            the body chunked, bit 6 Accept: application/x-ndjson, bit 7
 *            Expect: 100-continue
 *   live:    2 bytes (little-endian) script length n, then n bytes of agent
 *            script: frames of [type, flags, len (2 bytes LE), payload];
 *            flags bit 0 = END, bit 6 = req_id 0, bit 7 = req_id + 1 (a
 *            frame for some other request), else the id of the request the
 *            daemon sent. After the script the peer ends the request with an
 *            ERROR, so no request waits for its timeout.
 *   then lines split at '\n': [method,] target (path?query; bytes that
 *   cannot appear in a request line are %-encoded; in a live input every
 *   '@' becomes the live sandbox's id), token, one extra header, and the
 *   body (everything after the last split, newlines kept).
 *
 * The oracle, besides ASan/UBSan: a structured request gets exactly one
 * well-formed HTTP response within 10 s; a JSON body parses; an error status
 * carries {"error":{"code":"...","message":"..."}} and a 2xx an object; an
 * NDJSON stream is lines of JSON objects; and no request gets a 500 except a
 * refused sandbox creation or, in a live input, what the agent's nonsense
 * earns. A raw request may get no answer (MHD drops garbage), but any
 * answer it gets must pass the same checks.
 *
 * State: keys created or revoked by an input would change what later inputs
 * see (and slow the key check as keys pile up), so when an input changes the
 * key table the daemon is restarted from scratch. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admission.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "templates.h"
#include "fuzz.h"
#include "fuzz_http.h"
#include "http.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#define REPLY_TIMEOUT_MS 10000
#define REPLY_MAX (8u << 20)

static char scratch[PATH_MAX];
static char state_dir[PATH_MAX];
static char sock_path[PATH_MAX];

static struct daemon d;
static struct http_server *http;
static unsigned key_count; /* after setup: a change means an input made or revoked a key */
static bool verbose;
static int peer_attach(void *ctx, int fd);
static struct fuzz_backend backend_state = {.attach = peer_attach};

/* ---- the daemon */

static void insert_record(const char *id, const char *reason, const char *key_id, uint64_t now)
{
    struct sandbox_record rec = {
        .memory_mb = 512,
        .cpus = 1.0,
        .timeout_s = 60,
        .created_ms = now - 120000,
        .expires_ms = now - 60000,
        .agent_pid = 1,
        .metadata = (char *)"{\"owner\":\"fuzz\",\"n\":[1,2.5,null]}",
    };
    snprintf(rec.id, sizeof(rec.id), "%s", id);
    snprintf(rec.state, sizeof(rec.state), "running"); /* then destroyed, as the daemon does */
    snprintf(rec.template_name, sizeof(rec.template_name), "host");
    snprintf(rec.region, sizeof(rec.region), "local");
    snprintf(rec.key_id, sizeof(rec.key_id), "%s", key_id);
    FUZZ_SETUP(store_sandbox_insert(d.store, &rec, NULL) == 0, "insert record %s", id);
    FUZZ_SETUP(store_sandbox_set_destroyed(d.store, id, reason, now - 60000, NULL) == 0, "destroy record %s", id);
    json_t *detail = json_pack("{s:s,s:i}", "path", "/home/user/x.txt", "size", 3);
    FUZZ_SETUP(store_audit(d.store, key_id, "upload", id, detail) == 0, "audit %s", id);
    json_decref(detail);
}

static void daemon_start(void)
{
    char *argv[] = {"fuzz_http",       "--listen",        "127.0.0.1:1", "--socket", sock_path,
                    "--state-dir",     state_dir,         "--max-upload-mb", "1",    "--max-sandboxes", "1000", "--agent",
                    "/nonexistent/airlock-agent", "--runner", "/nonexistent/airlock_runner.py",
                    /* admission runs, but a fuzzer's wrong keys and request
                     * rate must not turn every later input into a 429 */
                    "--rate-limit", "0", "--auth-fail-rate", "0", NULL};
    memset(&d, 0, sizeof(d));
    FUZZ_SETUP(config_parse(&d.cfg, (int)ARRAY_SIZE(argv) - 1, argv) == 0, "config_parse");
    d.cfg.listen_port = 0; /* the TCP listener is not used: any free port */
    FUZZ_SETUP(mkdir(state_dir, 0700) == 0, "mkdir %s: %s", state_dir, strerror(errno));
    FUZZ_SETUP(store_open(state_dir, NULL, &d.store) == 0, "store_open %s", state_dir);
    char where[256];
    FUZZ_SETUP(auth_bootstrap(d.store, state_dir, FUZZ_ADMIN_KEY, where, sizeof(where)) == 0, "auth_bootstrap");
    char hash[KEY_HASH_LEN + 1];
    FUZZ_SETUP(auth_hash_key(FUZZ_USER_KEY, strlen(FUZZ_USER_KEY), hash) == 0, "hash");
    uint64_t now = now_wall_ms();
    FUZZ_SETUP(store_key_insert(d.store, FUZZ_USER_KEY_ID, "fuzz-user", hash, false, now, NULL) == 0, "user key");
    insert_record(FUZZ_SB_DELETED, "deleted", FUZZ_USER_KEY_ID, now);
    insert_record(FUZZ_SB_EXPIRED, "expired", FUZZ_USER_KEY_ID, now);
    insert_record(FUZZ_SB_ADMINS, "deleted", "", now);
    FUZZ_SETUP(store_key_count(d.store, &key_count) == 0, "key count");

    d.backend = &fuzz_none_backend_ops;
    char berr[128] = "";
    FUZZ_SETUP(d.backend->init(&d.backend_state, NULL, berr, sizeof(berr)) == 0, "backend init");
    d.backend_state = &backend_state;
    d.host_template = (struct template_info){.name = "host", .rootfs = NULL};
    d.nproc = 2; /* fixed, so an input means the same on every machine */
    FUZZ_SETUP(registry_new(&d, &d.reg) == 0, "registry_new");
    FUZZ_SETUP(admission_new(&d.cfg, &d.adm) == 0, "admission_new");
    /* templates: every route, but no builds (an input would start mmdebstrap) */
    FUZZ_SETUP(templates_open(&d, NULL, false, &d.templates) == 0, "templates_open");
    FUZZ_SETUP(http_start(&d, &http) == 0, "http_start");
}

/* ---- the live sandbox's scripted agent */

struct peer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;
    pthread_t thread;
    bool started; /* a thread exists (joined by peer_reap) */
    bool dead;    /* it ended: the daemon closed the stream */
    /* this input's script, played at the daemon's first request frame */
    uint8_t *script;
    size_t script_len;
    bool armed;
    bool close_after;
    bool playing;
};

static struct peer peer = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1};
static char live_id[SANDBOX_ID_LEN + 1];

static bool is_request(uint8_t type)
{
    return type == PROTO_RUN_CODE || type == PROTO_EXEC || (type >= PROTO_FILE_PUT && type <= PROTO_FILE_MKDIR) ||
           type == PROTO_FILE_STAT || type == PROTO_FILE_RENAME || type == PROTO_FILE_WATCH;
}

static void peer_reply(int fd, uint8_t type, uint32_t id, const char *json)
{
    (void)proto_send(fd, type, PROTO_F_END, id, json, strlen(json));
}

static void play(int fd, uint32_t id, const uint8_t *s, size_t len)
{
    size_t off = 0;
    while (len - off >= 4) {
        uint8_t type = s[off], flags = s[off + 1];
        size_t n = (size_t)s[off + 2] | (size_t)s[off + 3] << 8;
        off += 4;
        if (n > len - off)
            n = len - off;
        uint32_t rid = (flags & 0x80) ? id + 1 : (flags & 0x40) ? 0 : id;
        if (proto_send(fd, type, (flags & 1) ? PROTO_F_END : 0, rid, s + off, n) < 0)
            return;
        off += n;
    }
}

static void *peer_main(void *arg UNUSED)
{
    int fd = peer.fd;
    for (;;) {
        struct proto_hdr h;
        uint8_t *payload = NULL;
        if (proto_recv(fd, &h, &payload) < 0)
            break;
        if (h.type == PROTO_HELLO) {
            peer_reply(fd, PROTO_OK, h.req_id, "{\"version\":1,\"agent\":\"fuzz_http peer\",\"pid\":1}");
        } else if (h.type == PROTO_SHUTDOWN) {
            peer_reply(fd, PROTO_OK, h.req_id, "{}");
        } else if (is_request(h.type)) {
            pthread_mutex_lock(&peer.lock);
            bool take = peer.armed;
            uint8_t *script = take ? steal_ptr(&peer.script) : NULL;
            size_t len = peer.script_len;
            bool close_after = peer.close_after;
            peer.playing = take;
            peer.armed = false;
            pthread_mutex_unlock(&peer.lock);
            if (take) {
                play(fd, h.req_id, script, len);
                peer_reply(fd, PROTO_ERROR, h.req_id, "{\"code\":\"internal\",\"message\":\"end of the fuzz script\"}");
                if (close_after)
                    (void)shutdown(fd, SHUT_WR); /* the daemon's reader sees the agent die */
                free(script);
                pthread_mutex_lock(&peer.lock);
                peer.playing = false;
                pthread_cond_broadcast(&peer.cond);
                pthread_mutex_unlock(&peer.lock);
            } else {
                peer_reply(fd, PROTO_ERROR, h.req_id, "{\"code\":\"busy\",\"message\":\"no script for this request\"}");
            }
        }
        /* FILE_DATA, FILE_ACK, ERROR (cancel), SIGNAL: nothing to answer */
        free(payload);
    }
    pthread_mutex_lock(&peer.lock);
    peer.dead = true;
    peer.playing = false;
    pthread_cond_broadcast(&peer.cond);
    pthread_mutex_unlock(&peer.lock);
    return NULL;
}

/* backend_none's create(), on an MHD thread, while the harness waits for
 * its own POST /v1/sandboxes: fd is the agent's end of the stream. */
static int peer_attach(void *ctx UNUSED, int fd)
{
    pthread_mutex_lock(&peer.lock);
    int r = -EBUSY; /* ensure_live reaped the old one: a second create is a harness bug */
    if (!peer.started) {
        peer.fd = fd;
        peer.dead = false;
        r = -pthread_create(&peer.thread, NULL, peer_main, NULL);
        peer.started = r == 0;
    }
    pthread_mutex_unlock(&peer.lock);
    if (r < 0) {
        close(fd);
        peer.fd = -1;
    }
    return r;
}

/* Join a peer whose stream the daemon closed (or will close: at shutdown). */
static void peer_reap(void)
{
    if (!peer.started)
        return;
    pthread_join(peer.thread, NULL);
    close(peer.fd);
    peer.fd = -1;
    peer.started = false;
    live_id[0] = '\0';
}

static bool peer_alive(void)
{
    pthread_mutex_lock(&peer.lock);
    bool alive = peer.started && !peer.dead;
    pthread_mutex_unlock(&peer.lock);
    return alive;
}

static void peer_arm(const uint8_t *script, size_t len, bool close_after)
{
    pthread_mutex_lock(&peer.lock);
    free(peer.script); /* peer_settle dropped any before; be sure */
    peer.script = malloc(len ? len : 1);
    FUZZ_SETUP(peer.script, "oom");
    memcpy(peer.script, script, len);
    peer.script_len = len;
    peer.close_after = close_after;
    peer.armed = true;
    pthread_mutex_unlock(&peer.lock);
}

/* After the answer: drop a script no request asked for, and wait until the
 * peer is done playing, so its frames do not spill into the next input. */
static void peer_settle(void)
{
    pthread_mutex_lock(&peer.lock);
    free(steal_ptr(&peer.script));
    peer.armed = false;
    uint64_t deadline = now_mono_ms() + REPLY_TIMEOUT_MS;
    while (peer.playing) {
        FUZZ_CHECK(now_mono_ms() < deadline, "the daemon stopped reading its agent's stream");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&peer.cond, &peer.lock, &ts);
    }
    pthread_mutex_unlock(&peer.lock);
}

/* main.c's shutdown sequence */
static void daemon_stop(void)
{
    if (!http)
        return;
    atomic_store(&d.shutting_down, true);
    http_quiesce(http);
    sandbox_destroy_all(&d, "shutdown");
    http_stop(http);
    http = NULL;
    peer_reap(); /* the live sandbox is gone: its peer saw EOF */
    templates_close(d.templates);
    d.templates = NULL;
    registry_free(d.reg);
    admission_free(d.adm);
    d.backend->fini(d.backend_state);
    store_close(d.store);
    config_free(&d.cfg);
    FUZZ_SETUP(fuzz_rm_rf(state_dir) == 0, "rm -rf %s", state_dir);
}

static void cleanup(void)
{
    daemon_stop();
    if (scratch[0])
        (void)fuzz_rm_rf(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz_http", (enum log_level)(LOG_LVL_ERROR + 1));
    FUZZ_SETUP(signal(SIGPIPE, SIG_IGN) != SIG_ERR, "ignore SIGPIPE"); /* as airlockd does */
    snprintf(scratch, sizeof(scratch), "%s/airlock-fuzz-http-XXXXXX", fuzz_tmpdir());
    FUZZ_SETUP(mkdtemp(scratch), "mkdtemp %s: %s", scratch, strerror(errno));
    FUZZ_SETUP((size_t)snprintf(state_dir, sizeof(state_dir), "%s/state", scratch) < sizeof(state_dir) &&
                   (size_t)snprintf(sock_path, sizeof(sock_path), "%s/api.sock", scratch) <
                       sizeof(((struct sockaddr_un *)0)->sun_path),
               "scratch path %s too long for a unix socket", scratch);
    verbose = getenv("FUZZ_HTTP_VERBOSE") != NULL;
    if (verbose) /* and the daemon's own log */
        log_init("fuzz_http", LOG_LVL_DEBUG);
    fuzz_scratch_register(scratch);
    /* cleanup stops the daemon, whose last audit events are hashed: OpenSSL
     * must not have run its own exit handler before (it would, registered
     * after ours at its first use) */
    FUZZ_SETUP(OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL) == 1, "OPENSSL_init_crypto");
    atexit(cleanup);
    daemon_start();
    return 0;
}

/* Did the input create or revoke a key? Then start over (see the top). */
static void reset_if_keys_changed(void)
{
    unsigned n = 0;
    struct key_info ki;
    char hash[KEY_HASH_LEN + 1];
    FUZZ_SETUP(auth_hash_key(FUZZ_USER_KEY, strlen(FUZZ_USER_KEY), hash) == 0, "hash");
    bool user_ok = store_key_find(d.store, hash, &ki) == 0;
    FUZZ_SETUP(auth_hash_key(FUZZ_ADMIN_KEY, strlen(FUZZ_ADMIN_KEY), hash) == 0, "hash");
    bool admin_ok = store_key_find(d.store, hash, &ki) == 0;
    if (store_key_count(d.store, &n) == 0 && n == key_count && user_ok && admin_ok)
        return;
    daemon_stop();
    daemon_start();
}

/* ---- the request */

struct input {
    const uint8_t *p;
    size_t len;
};

/* The next '\n'-terminated piece (without the '\n'), or the rest. */
static struct input next_line(struct input *in)
{
    struct input line = *in;
    const uint8_t *nl = memchr(in->p, '\n', in->len);
    if (nl) {
        line.len = (size_t)(nl - in->p);
        in->p = nl + 1;
        in->len -= line.len + 1;
    } else {
        in->p += in->len;
        in->len = 0;
    }
    return line;
}

/* Header values must not break the header block. */
static void append_header_value(struct buf *b, struct input v)
{
    for (size_t i = 0; i < v.len; i++) {
        char c = (char)v.p[i];
        FUZZ_SETUP(buf_append(b, c == '\r' || c == '\n' || c == '\0' ? " " : &c, 1) == 0, "oom");
    }
}

static void append_target(struct buf *b, struct input t, bool live)
{
    if (t.len == 0 || t.p[0] != '/')
        FUZZ_SETUP(buf_append(b, "/", 1) == 0, "oom");
    for (size_t i = 0; i < t.len; i++) {
        uint8_t c = t.p[i];
        char enc[4];
        if (live && c == '@') {
            FUZZ_SETUP(buf_append_str(b, live_id) == 0, "oom");
            continue;
        }
        if (c <= 0x20 || c >= 0x7f)
            snprintf(enc, sizeof(enc), "%%%02X", c);
        else
            snprintf(enc, sizeof(enc), "%c", c);
        FUZZ_SETUP(buf_append_str(b, enc) == 0, "oom");
    }
}

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};

struct request {
    struct buf wire;
    bool head;
};

static void build_request(uint8_t f, struct input in, bool live, struct request *rq)
{
    struct buf *w = &rq->wire;
    char method[64];
    if ((f & 7) == 7) {
        struct input m = next_line(&in);
        size_t n = 0;
        for (size_t i = 0; i < m.len && n < sizeof(method) - 1; i++)
            if (m.p[i] > 0x20 && m.p[i] < 0x7f)
                method[n++] = (char)m.p[i];
        method[n] = '\0';
        if (n == 0)
            snprintf(method, sizeof(method), "GET");
    } else {
        snprintf(method, sizeof(method), "%s", methods[f & 7]);
    }
    struct input target = next_line(&in);
    struct input token = next_line(&in);
    struct input extra = next_line(&in);
    struct input body = in;

    rq->head = strcmp(method, "HEAD") == 0;
    FUZZ_SETUP(buf_append_str(w, method) == 0 && buf_append_str(w, " ") == 0, "oom");
    append_target(w, target, live);
    FUZZ_SETUP(buf_append_str(w, " HTTP/1.1\r\nHost: airlock\r\nConnection: close\r\n") == 0, "oom");
    switch ((f >> 3) & 3) {
    case 1: FUZZ_SETUP(buf_append_str(w, "Authorization: Bearer " FUZZ_ADMIN_KEY "\r\n") == 0, "oom"); break;
    case 2: FUZZ_SETUP(buf_append_str(w, "Authorization: Bearer " FUZZ_USER_KEY "\r\n") == 0, "oom"); break;
    case 3:
        FUZZ_SETUP(buf_append_str(w, "Authorization: Bearer ") == 0, "oom");
        append_header_value(w, token);
        FUZZ_SETUP(buf_append_str(w, "\r\n") == 0, "oom");
        break;
    default: break;
    }
    if (f & 0x40)
        FUZZ_SETUP(buf_append_str(w, "Accept: application/x-ndjson\r\n") == 0, "oom");
    if (f & 0x80)
        FUZZ_SETUP(buf_append_str(w, "Expect: 100-continue\r\n") == 0, "oom");
    if (extra.len) {
        /* the framing is this harness's (one request, then close): a second
         * Content-Length would make MHD wait for a body that never comes */
        static const char *const framing[] = {"content-length", "transfer-encoding", "connection"};
        bool reframe = false;
        for (size_t i = 0; i < ARRAY_SIZE(framing); i++)
            reframe = reframe || (extra.len >= strlen(framing[i]) &&
                                  strncasecmp((const char *)extra.p, framing[i], strlen(framing[i])) == 0);
        if (reframe)
            FUZZ_SETUP(buf_append_str(w, "X-Fuzz-") == 0, "oom");
        else if (extra.p[0] == ':')
            /* libmicrohttpd 0.9.75 answers a request with an empty header
             * name and Expect: 100-continue by "100 Continue", then refuses
             * the application's answer (MHD_queue_response fails) and
             * closes: its quirk with a malformed request, not the daemon's */
            FUZZ_SETUP(buf_append_str(w, "X-Fuzz") == 0, "oom");
        else if (!memchr(extra.p, ':', extra.len))
            FUZZ_SETUP(buf_append_str(w, "X-Fuzz: ") == 0, "oom");
        append_header_value(w, extra);
        FUZZ_SETUP(buf_append_str(w, "\r\n") == 0, "oom");
    }
    char hdr[64];
    if (f & 0x20) {
        FUZZ_SETUP(buf_append_str(w, "Transfer-Encoding: chunked\r\n\r\n") == 0, "oom");
        /* two chunks when there is something to split: MHD hands the handler
         * the body in pieces either way */
        size_t half = body.len / 2;
        size_t parts[2] = {half, body.len - half};
        const uint8_t *p = body.p;
        for (int i = 0; i < 2; i++) {
            if (!parts[i])
                continue;
            snprintf(hdr, sizeof(hdr), "%zx\r\n", parts[i]);
            FUZZ_SETUP(buf_append_str(w, hdr) == 0 && buf_append(w, p, parts[i]) == 0 &&
                           buf_append_str(w, "\r\n") == 0,
                       "oom");
            p += parts[i];
        }
        FUZZ_SETUP(buf_append_str(w, "0\r\n\r\n") == 0, "oom");
    } else {
        snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", body.len);
        FUZZ_SETUP(buf_append_str(w, hdr) == 0 && buf_append(w, body.p, body.len) == 0, "oom");
    }
}

/* ---- the exchange */

static int connect_daemon(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    FUZZ_SETUP((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path) < sizeof(sa.sun_path), "long path");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_SETUP(fd >= 0, "socket: %s", strerror(errno));
    FUZZ_SETUP(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock_path, strerror(errno));
    return fd;
}

/* ---- the oracle */

struct response {
    unsigned status;
    const char *body;
    size_t body_len;
    bool json;
    bool ndjson;        /* a streamed run */
    bool download;      /* application/octet-stream */
    char *chunked_body; /* decoded, owned */
};

static const char *find_crlfcrlf(const char *p, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            return p + i;
    return NULL;
}

/* The value of a header in the block [h, end), or NULL. */
static const char *header_value(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (const char *line = h; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

/* Decode a chunked body; NULL if malformed. */
static char *dechunk(const char *p, size_t len, size_t *out_len)
{
    struct buf out = {0};
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            goto bad;
        char *end;
        unsigned long n = strtoul(p + off, &end, 16);
        if (end == p + off)
            goto bad;
        off = (size_t)(eol - p) + 2;
        if (n == 0)
            break;
        if (n > len - off || len - off - n < 2 || memcmp(p + off + n, "\r\n", 2) != 0)
            goto bad;
        FUZZ_SETUP(buf_append(&out, p + off, n) == 0, "oom");
        off += n + 2;
    }
    *out_len = out.len;
    if (!out.data)
        FUZZ_SETUP(buf_append(&out, "", 0) == 0, "oom");
    return out.data;
bad:
    buf_free(&out);
    return NULL;
}

/* Parse one response at p; returns its length, 0 if incomplete (raw mode
 * only). Interim 100 Continue responses are skipped by the caller. */
static size_t parse_response(const char *p, size_t len, bool head, bool until_eof, struct response *r)
{
    *r = (struct response){0};
    const char *hend = find_crlfcrlf(p, len);
    if (!hend)
        return 0;
    FUZZ_CHECK(len >= 13 && (memcmp(p, "HTTP/1.1 ", 9) == 0 || memcmp(p, "HTTP/1.0 ", 9) == 0),
               "malformed status line: %.40s", p);
    char *end;
    r->status = (unsigned)strtoul(p + 9, &end, 10);
    FUZZ_CHECK(end == p + 12 && r->status >= 100 && r->status < 600, "bad status: %.20s", p);
    const char *hdrs = memmem(p, (size_t)(hend - p), "\r\n", 2);
    hdrs = hdrs ? hdrs + 2 : hend;
    const char *body = hend + 4;
    size_t avail = len - (size_t)(body - p);
    size_t vlen = 0;
    const char *ct = header_value(hdrs, hend + 2, "Content-Type", &vlen);
    r->json = ct && vlen >= 16 && strncasecmp(ct, "application/json", 16) == 0;
    r->ndjson = ct && vlen >= 20 && strncasecmp(ct, "application/x-ndjson", 20) == 0;
    r->download = ct && vlen >= 24 && strncasecmp(ct, "application/octet-stream", 24) == 0;
    if (r->status < 200 || r->status == 204 || r->status == 304 || head) {
        r->body = body;
        return (size_t)(body - p);
    }
    const char *te = header_value(hdrs, hend + 2, "Transfer-Encoding", &vlen);
    const char *cl = header_value(hdrs, hend + 2, "Content-Length", &vlen);
    if (te && vlen >= 7 && strncasecmp(te, "chunked", 7) == 0) {
        r->chunked_body = dechunk(body, avail, &r->body_len);
        if (!r->chunked_body && until_eof && r->download)
            return len; /* an agent error mid-download can only cut the body short */
        FUZZ_CHECK(r->chunked_body || !until_eof, "malformed chunked body");
        r->body = r->chunked_body;
        return r->chunked_body ? len : 0;
    }
    if (cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (n > avail && until_eof && r->download) {
            /* the agent announced a size, then failed or sent less: the
             * daemon can only close early, which the client sees as short */
            r->body = body;
            r->body_len = avail;
            return len;
        }
        if (n > avail) {
            FUZZ_CHECK(!until_eof, "body shorter (%zu) than its Content-Length (%llu)", avail, n);
            return 0;
        }
        r->body = body;
        r->body_len = (size_t)n;
        return (size_t)(body - p) + (size_t)n;
    }
    /* neither: the body runs to the close */
    r->body = body;
    r->body_len = avail;
    return len;
}

/* A streamed run or a watch: JSON event lines, the last saying how it
 * ended (a run: exit or error; a watch: end or error). */
static void check_ndjson(const struct response *r, const char *req)
{
    bool watch = strstr(req, "/files/watch") != NULL;
    const char *p = r->body, *end = r->body + r->body_len;
    const char *last_type = NULL;
    json_t *last = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl != NULL, "NDJSON stream ends inside a line: %.200s", p);
        json_error_t jerr;
        /* NUL bytes of program output are kept, as \u0000: valid JSON */
        json_t *ev = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &jerr);
        FUZZ_CHECK(json_is_object(ev) && json_is_string(json_object_get(ev, "type")),
                   "NDJSON line is not an event (%s): %.200s", jerr.text, p);
        json_decref(last);
        last = ev;
        last_type = json_string_value(json_object_get(ev, "type"));
        p = nl + 1;
    }
    FUZZ_CHECK(last_type && (strcmp(last_type, watch ? "end" : "exit") == 0 || strcmp(last_type, "error") == 0),
               "NDJSON stream ended without an %s or error event (last: %s) for %.200s", watch ? "end" : "exit",
               last_type ? last_type : "none", req);
    json_decref(last);
}

static void check_response(const struct response *r, const char *req, bool live)
{
    if (r->ndjson && r->status == 200) {
        check_ndjson(r, req);
        return;
    }
    if (!r->json || r->body_len == 0) {
        /* only libmicrohttpd's own protocol errors are not JSON */
        FUZZ_CHECK(r->status != 500, "500 without a JSON body for %.200s", req);
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, JSON_ALLOW_NUL, &jerr); /* \u0000 in output is fine */
    FUZZ_CHECK(j != NULL, "status %u: JSON body does not parse (%s): %.200s", r->status, jerr.text, r->body);
    if (r->status >= 400) {
        json_t *e = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(json_is_object(j) && json_object_size(j) == 1 && json_is_object(e) && code && *code && msg,
                   "status %u without the error envelope: %.200s", r->status, r->body);
        /* the backend's refusal is the one expected failure; an agent
         * sending nonsense earns its requests a 500 */
        FUZZ_CHECK(r->status != 500 || live || strstr(msg, FUZZ_NONE_CREATE_ERROR),
                   "500 %s: %s, for %.300s", code, msg, req);
    } else if (r->status >= 200 && r->status < 300) {
        FUZZ_CHECK(json_is_object(j), "status %u with a JSON body that is not an object: %.200s", r->status,
                   r->body);
    }
    json_decref(j);
}

/* Check the first response of the answer (after any 100 Continue); returns
 * whether there was a complete one. Raw input may pipeline requests, whose
 * answers are not checked: which method each answers is not known here. */
static bool check_answer(const struct buf *resp, bool head, bool strict, const char *req, bool live)
{
    size_t off = 0;
    while (off < resp->len) {
        struct response r;
        size_t used = parse_response(resp->data + off, resp->len - off, head, strict, &r);
        if (used == 0) {
            FUZZ_CHECK(!strict, "incomplete response: %.200s", resp->data + off);
            return false;
        }
        if (r.status >= 100 && r.status < 200) { /* 100 Continue, then the real one */
            off += used;
            continue;
        }
        check_response(&r, req, live);
        free(r.chunked_body);
        return true;
    }
    return false;
}

/* Is there a complete final answer (after any 100 Continue) in resp? */
static bool answer_complete(const struct buf *resp, bool head)
{
    size_t off = 0;
    while (off < resp->len) {
        struct response r;
        size_t used = parse_response(resp->data + off, resp->len - off, head, false, &r);
        free(r.chunked_body);
        if (used == 0)
            return false;
        if (r.status >= 200)
            return true;
        off += used;
    }
    return false;
}

/* Send the request while reading the answer (a server may answer before the
 * body is all sent), until the server closes, or (whole_answer) a complete
 * answer is in, or the time is up. Returns false on timeout. */
static bool exchange(int fd, const struct buf *req, bool shut_write, bool whole_answer, bool head, struct buf *resp)
{
    size_t off = 0;
    bool write_open = true;
    uint64_t deadline = now_mono_ms() + REPLY_TIMEOUT_MS;
    for (;;) {
        uint64_t now = now_mono_ms();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN | (write_open ? POLLOUT : 0)};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        FUZZ_SETUP(n >= 0, "poll: %s", strerror(errno));
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[65536];
            ssize_t r = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                return true; /* closed (a reset after the answer is fine too) */
            if (r > 0) {
                FUZZ_CHECK(resp->len + (size_t)r <= REPLY_MAX, "answer larger than %u bytes", REPLY_MAX);
                FUZZ_SETUP(buf_append(resp, chunk, (size_t)r) == 0, "oom");
                if (whole_answer && answer_complete(resp, head))
                    return true;
            }
        }
        if (write_open && (p.revents & POLLOUT)) {
            ssize_t r = off < req->len ? send(fd, req->data + off, req->len - off, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                write_open = false; /* the server stopped reading: it answered or gave up */
            else if (r > 0)
                off += (size_t)r;
            if (off == req->len) {
                write_open = false;
                if (shut_write)
                    (void)shutdown(fd, SHUT_WR);
            }
        }
    }
}

/* Does raw input start with a HEAD request (whose answer has no body)? */
static bool raw_is_head(const uint8_t *p, size_t len)
{
    while (len > 0 && (*p == '\r' || *p == '\n')) {
        p++;
        len--;
    }
    return len >= 5 && memcmp(p, "HEAD ", 5) == 0;
}

/* The live sandbox, created (as the user key, which then owns it) if there
 * is none: an earlier input may have deleted it, let it expire or made its
 * agent die. */
static void ensure_live(void)
{
    if (peer_alive())
        return;
    peer_reap();
    static const char create[] = "POST /v1/sandboxes HTTP/1.1\r\nHost: airlock\r\nConnection: close\r\n"
                                 "Authorization: Bearer " FUZZ_USER_KEY "\r\n"
                                 "Content-Length: 19\r\n\r\n{\"timeout_s\":86400}";
    struct buf req = {0};
    FUZZ_SETUP(buf_append_str(&req, create) == 0, "oom");
    /* a sandbox whose agent died is destroyed by the reaper, asynchronously:
     * until then it counts against --max-sandboxes */
    for (int attempt = 0; !peer_alive(); attempt++) {
        struct buf resp = {0};
        int fd = connect_daemon();
        atomic_store(&backend_state.allow_create, true);
        bool done = exchange(fd, &req, false, true, false, &resp);
        atomic_store(&backend_state.allow_create, false);
        close(fd);
        struct response r;
        FUZZ_SETUP(done && parse_response(resp.data, resp.len, false, true, &r) > 0, "create the live sandbox");
        if (r.status == 201) {
            json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
            const char *id = json_string_value(json_object_get(j, "id"));
            FUZZ_SETUP(id && strlen(id) == SANDBOX_ID_LEN, "live sandbox without an id: %.200s", r.body);
            snprintf(live_id, sizeof(live_id), "%s", id);
            json_decref(j);
        }
        FUZZ_SETUP(r.status == 201 || (r.status == 429 && attempt < 200), "create the live sandbox: %.300s",
                   resp.data);
        free(r.chunked_body);
        buf_free(&resp);
        if (r.status != 201)
            usleep(10000);
    }
    buf_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool raw = (data[0] & 3) == 3;
    bool live = !raw && (data[0] & 4);
    struct request rq = {0};
    struct input in = {data + 2, size - 2};
    if (raw) {
        FUZZ_SETUP(buf_append(&rq.wire, data + 1, size - 1) == 0, "oom");
    } else {
        if (live) {
            if (in.len < 2)
                return 0;
            size_t n = (size_t)in.p[0] | (size_t)in.p[1] << 8;
            in.p += 2;
            in.len -= 2;
            if (n > in.len)
                n = in.len;
            ensure_live();
            peer_arm(in.p, n, data[0] & 8);
            in.p += n;
            in.len -= n;
        }
        build_request(data[1], in, live, &rq);
    }

    int fd = connect_daemon();
    struct buf resp = {0};
    bool done = exchange(fd, &rq.wire, raw, !raw, rq.head, &resp);
    close(fd);
    if (live)
        peer_settle();
    const char *req = rq.wire.data ? rq.wire.data : "";
    if (verbose) /* FUZZ_HTTP_VERBOSE=1: what each input became, for writing seeds */
        fprintf(stderr, "---- request\n%.*s\n---- answer\n%.*s\n", (int)(rq.wire.len < 600 ? rq.wire.len : 600),
                req, (int)(resp.len < 600 ? resp.len : 600), resp.data ? resp.data : "");
    if (!raw) {
        FUZZ_CHECK(done, "no answer within %d ms to %.300s", REPLY_TIMEOUT_MS, req);
        FUZZ_CHECK(check_answer(&resp, rq.head, true, req, live), "no response to %.300s", req);
    } else if (resp.len) {
        (void)check_answer(&resp, raw_is_head(data + 1, size - 1), false, req, false);
    }
    buf_free(&resp);
    buf_free(&rq.wire);
    reset_if_keys_changed();
    return 0;
}
