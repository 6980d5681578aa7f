/* client.c - libcurl + jansson client for the Airlock REST API.
 *
 * A request is: reset the reused easy handle (the connection cache survives
 * curl_easy_reset, so keep-alive works across calls), set the common options
 * (URL, unix socket, auth header, abort hook), add the request's own body
 * source and body sink, perform, then turn the outcome into 0 / CLIENT_EAPI /
 * CLIENT_ETRANSPORT. Error bodies are always collected in memory, whatever the
 * sink of a successful body would have been, so `{"error":{...}}` can be shown.
 */
#include "client.h"

#include "util.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_URL "http://127.0.0.1:7070"
/* An answer bigger than this that we keep in memory is a broken daemon. */
#define MAX_MEM_BODY (256u << 20)

static void set_err(struct client *c, long status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(struct client *c, long status, const char *code, const char *fmt, ...)
{
    c->err.status = status;
    c->err.retry_after_s = 0;
    snprintf(c->err.code, sizeof(c->err.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof(c->err.message), fmt, ap);
    va_end(ap);
}

void client_print_error(const struct client *c)
{
    if (c->err.code[0])
        fprintf(stderr, "airlock: %s (%s)\n", c->err.message, c->err.code);
    else
        fprintf(stderr, "airlock: %s\n", c->err.message);
    if (c->err.status == 429 && c->err.retry_after_s > 0)
        fprintf(stderr, "airlock: airlockd is limiting this client (HTTP 429); retry in %ld s\n",
                c->err.retry_after_s);
    else if (c->err.status == 429)
        fprintf(stderr, "airlock: airlockd refused this request over a quota (HTTP 429): free some sandboxes "
                        "first\n");
}

int client_init(struct client *c, const char *url, const char *key)
{
    memset(c, 0, sizeof(*c));
    if (!url || !*url)
        url = getenv("AIRLOCK_URL");
    if (!url || !*url)
        url = DEFAULT_URL;
    if (!key)
        key = getenv("AIRLOCK_API_KEY");

    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        if (*p != '/') {
            set_err(c, 0, "usage", "bad URL %s: expected unix:///absolute/path.sock", url);
            return -1;
        }
        c->unix_path = strdup(p);
        c->base = strdup("http://localhost");
    } else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        c->base = strdup(url);
        if (c->base) {
            size_t n = strlen(c->base);
            while (n > 0 && c->base[n - 1] == '/')
                c->base[--n] = '\0';
        }
    } else {
        set_err(c, 0, "usage", "bad URL %s: use http://HOST:PORT or unix:///path.sock", url);
        return -1;
    }
    if (!c->base || (strncmp(url, "unix://", 7) == 0 && !c->unix_path)) {
        set_err(c, 0, "internal", "out of memory");
        return -1;
    }
    if (key && *key) {
        if (asprintf(&c->auth, "Authorization: Bearer %s", key) < 0) {
            c->auth = NULL;
            set_err(c, 0, "internal", "out of memory");
            return -1;
        }
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        set_err(c, 0, "internal", "curl_easy_init failed");
        return -1;
    }
    return 0;
}

void client_cleanup(struct client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->unix_path);
    free(c->auth);
    memset(c, 0, sizeof(*c));
}

/* ---- body sinks -------------------------------------------------------- */

struct membuf {
    char *p;
    size_t len, cap;
};

static void membuf_freep(struct membuf *b) { free(b->p); }
#define cleanup_membuf __attribute__((cleanup(membuf_freep)))

static int membuf_add(struct membuf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > MAX_MEM_BODY)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* What to do with a successful (2xx) body; an error body always goes to `err`. */
enum sink_kind { SINK_MEM, SINK_FILE, SINK_LINES };

struct sink {
    struct client *c;
    enum sink_kind kind;
    struct membuf mem;   /* SINK_MEM body, or SINK_LINES partial line */
    struct membuf err;   /* body of an error answer */
    FILE *file;          /* SINK_FILE */
    uint64_t written;    /* SINK_FILE: bytes written (inflated, for a gzip download) */
    EVP_MD_CTX *sha;     /* SINK_FILE: sha256 of the body so far */
    client_event_cb cb;  /* SINK_LINES */
    void *ud;
    bool failed;         /* the sink itself failed (write error, bad line, cb stop) */
    bool ended;          /* SINK_LINES: the terminal event ("exit", "end" of a watch, or "error") came */
    int cb_rc;
};

static int sink_line(struct sink *s, const char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0;
    json_error_t jerr;
    json_t *ev = json_loadb(line, n, 0, &jerr);
    if (!ev) {
        set_err(s->c, 0, "protocol", "bad NDJSON line from airlockd: %s", jerr.text);
        return -1;
    }
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (type && (strcmp(type, "exit") == 0 || strcmp(type, "end") == 0 || strcmp(type, "error") == 0))
        s->ended = true;
    int rc = s->cb(ev, s->ud);
    json_decref(ev);
    if (rc != 0) {
        s->cb_rc = rc;
        return -1;
    }
    return 0;
}

static size_t sink_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    long status = 0;
    if (curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (status >= 400) {
        if (membuf_add(&s->err, data, n) < 0) {
            set_err(s->c, status, "http_error", "HTTP %ld with an oversized body", status);
            goto fail;
        }
        return n;
    }
    switch (s->kind) {
    case SINK_MEM:
        if (membuf_add(&s->mem, data, n) < 0) {
            set_err(s->c, 0, "internal", "answer from airlockd too large or out of memory");
            goto fail;
        }
        return n;
    case SINK_FILE:
        if (s->sha && EVP_DigestUpdate(s->sha, data, n) != 1) {
            set_err(s->c, 0, "internal", "sha256 failed");
            goto fail;
        }
        if (fwrite(data, 1, n, s->file) != n) {
            set_err(s->c, 0, "io", "write failed: %m");
            goto fail;
        }
        s->written += n;
        return n;
    case SINK_LINES: {
        /* Hand every complete line to the callback as soon as it arrives;
         * keep the tail for the next chunk. */
        size_t start = 0;
        for (size_t i = 0; i < n; i++) {
            if (data[i] != '\n')
                continue;
            if (s->mem.len > 0) {
                if (membuf_add(&s->mem, data + start, i - start) < 0 ||
                    sink_line(s, s->mem.p, s->mem.len) < 0)
                    goto fail;
                s->mem.len = 0;
            } else if (sink_line(s, data + start, i - start) < 0) {
                goto fail;
            }
            start = i + 1;
        }
        if (start < n && membuf_add(&s->mem, data + start, n - start) < 0) {
            set_err(s->c, 0, "protocol", "NDJSON line from airlockd too long");
            goto fail;
        }
        return n;
    }
    }
fail:
    s->failed = true;
    return 0; /* makes libcurl abort with CURLE_WRITE_ERROR */
}

static int abort_hook(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct client *c = ud;
    return c->abort_flag && *c->abort_flag ? 1 : 0;
}

/* ---- the request ------------------------------------------------------- */

struct slist_holder {
    struct curl_slist *l;
};
static void slist_freep(struct slist_holder *h) { curl_slist_free_all(h->l); }

static int add_header(struct client *c, struct slist_holder *h, const char *line)
{
    struct curl_slist *n = curl_slist_append(h->l, line);
    if (!n) {
        set_err(c, 0, "internal", "out of memory");
        return -1;
    }
    h->l = n;
    return 0;
}

#define SETOPT(c, opt, val)                                                                        \
    do {                                                                                           \
        CURLcode rc_ = curl_easy_setopt((c)->curl, (opt), (val));                                  \
        if (rc_ != CURLE_OK) {                                                                     \
            set_err((c), 0, "internal", "curl_easy_setopt(%s): %s", #opt, curl_easy_strerror(rc_)); \
            return CLIENT_ETRANSPORT;                                                              \
        }                                                                                          \
    } while (0)

/* Parse an error answer into c->err. */
static void parse_api_error(struct client *c, long status, const struct membuf *body)
{
    json_t *j = body->p ? json_loadb(body->p, body->len, 0, NULL) : NULL;
    json_t *e = j ? json_object_get(j, "error") : NULL;
    const char *code = e ? json_string_value(json_object_get(e, "code")) : NULL;
    const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
    if (code && msg)
        set_err(c, status, code, "%s", msg);
    else
        set_err(c, status, "http_error", "HTTP %ld from airlockd%s%.200s", status, body->len ? ": " : "",
                body->len ? body->p : "");
    json_decref(j);
}

/* The upload source, when there is one. */
struct upload_src {
    FILE *f;
    curl_off_t size;
    char sha_hdr[96]; /* "X-Content-SHA256: <hex>", or "" */
    bool gzip;        /* f holds the content gzip-compressed: Content-Encoding: gzip */
};

static size_t upload_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct upload_src *u = ud;
    size_t n = fread(buf, 1, size * nitems, u->f);
    if (n == 0 && ferror(u->f))
        return CURL_READFUNC_ABORT;
    return n;
}

static int perform(struct client *c, const char *method, const char *path, const char *json_body,
                   struct upload_src *upload, const char *accept, struct sink *s)
{
    struct slist_holder hdrs __attribute__((cleanup(slist_freep))) = {NULL};
    cleanup_free char *url = NULL;

    if (asprintf(&url, "%s%s", c->base, path) < 0) {
        url = NULL;
        set_err(c, 0, "internal", "out of memory");
        return CLIENT_ETRANSPORT;
    }
    curl_easy_reset(c->curl);
    c->curl_err[0] = '\0';
    SETOPT(c, CURLOPT_URL, url);
    SETOPT(c, CURLOPT_ERRORBUFFER, c->curl_err);
    SETOPT(c, CURLOPT_NOSIGNAL, 1L);
    SETOPT(c, CURLOPT_USERAGENT, "airlock-cli/0.1.0");
    SETOPT(c, CURLOPT_CONNECTTIMEOUT, 10L);
    if (c->timeout_s > 0)
        SETOPT(c, CURLOPT_TIMEOUT, c->timeout_s);
    if (c->unix_path)
        SETOPT(c, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    SETOPT(c, CURLOPT_NOPROGRESS, 0L);
    SETOPT(c, CURLOPT_XFERINFOFUNCTION, abort_hook);
    SETOPT(c, CURLOPT_XFERINFODATA, c);
    if (c->gzip && s->kind == SINK_FILE) /* a download: libcurl inflates what the daemon deflates */
        SETOPT(c, CURLOPT_ACCEPT_ENCODING, "gzip");
    SETOPT(c, CURLOPT_WRITEFUNCTION, sink_write);
    SETOPT(c, CURLOPT_WRITEDATA, s);

    if (c->auth && add_header(c, &hdrs, c->auth) < 0)
        return CLIENT_ETRANSPORT;
    char accept_hdr[128];
    snprintf(accept_hdr, sizeof(accept_hdr), "Accept: %s", accept);
    if (add_header(c, &hdrs, accept_hdr) < 0)
        return CLIENT_ETRANSPORT;

    if (upload) {
        SETOPT(c, CURLOPT_UPLOAD, 1L);
        SETOPT(c, CURLOPT_READFUNCTION, upload_read);
        SETOPT(c, CURLOPT_READDATA, upload);
        SETOPT(c, CURLOPT_INFILESIZE_LARGE, upload->size);
        if (add_header(c, &hdrs, "Content-Type: application/octet-stream") < 0)
            return CLIENT_ETRANSPORT;
        if (upload->gzip && add_header(c, &hdrs, "Content-Encoding: gzip") < 0)
            return CLIENT_ETRANSPORT;
        if (upload->sha_hdr[0] && add_header(c, &hdrs, upload->sha_hdr) < 0)
            return CLIENT_ETRANSPORT;
    } else if (json_body) {
        SETOPT(c, CURLOPT_POSTFIELDS, json_body);
        SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json_body));
        if (add_header(c, &hdrs, "Content-Type: application/json") < 0)
            return CLIENT_ETRANSPORT;
    }
    if (strcmp(method, "GET") != 0 && !(upload && strcmp(method, "PUT") == 0) &&
        !(json_body && strcmp(method, "POST") == 0))
        SETOPT(c, CURLOPT_CUSTOMREQUEST, method);
    SETOPT(c, CURLOPT_HTTPHEADER, hdrs.l);

    CURLcode rc = curl_easy_perform(c->curl);
    long status = 0;
    if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;

    if (status >= 400) {
        /* An error answer wins over a transfer aborted after it (for example
         * a 413 that came while the upload was still being sent). */
        parse_api_error(c, status, &s->err);
        curl_off_t retry = 0;
        if (status == 429 && curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &retry) == CURLE_OK && retry > 0)
            c->err.retry_after_s = (long)retry;
        return CLIENT_EAPI;
    }
    if (rc != CURLE_OK) {
        if (s->failed) {
            if (!c->err.message[0])
                set_err(c, 0, "internal", "stopped by the event handler (%d)", s->cb_rc);
            return CLIENT_ETRANSPORT; /* the sink said what went wrong */
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK)
            set_err(c, 0, "interrupted", "interrupted");
        else
            set_err(c, 0, "connection", "%s%s: %s", c->unix_path ? "unix://" : "",
                    c->unix_path ? c->unix_path : c->base, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
        return CLIENT_ETRANSPORT;
    }
    if (s->kind == SINK_LINES && s->mem.len > 0 && sink_line(s, s->mem.p, s->mem.len) < 0)
        return CLIENT_ETRANSPORT;
    if (s->kind == SINK_LINES && !s->ended) {
        /* every stream ends with "exit" or "error": without it, the
         * connection was cut and the run's outcome is unknown */
        set_err(c, 0, "connection", "the stream ended without its terminal event: the connection was cut");
        return CLIENT_ETRANSPORT;
    }
    return CLIENT_OK;
}

static void sink_freep(struct sink *s)
{
    EVP_MD_CTX_free(s->sha);
    membuf_freep(&s->mem);
    membuf_freep(&s->err);
}
#define cleanup_sink __attribute__((cleanup(sink_freep)))

int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **out, char **raw_out)
{
    cleanup_free char *json_body = NULL;
    cleanup_sink struct sink s = {.c = c, .kind = SINK_MEM};

    memset(&c->err, 0, sizeof(c->err));
    if (out)
        *out = NULL;
    if (raw_out)
        *raw_out = NULL;
    if (body) {
        json_body = json_dumps(body, JSON_COMPACT);
        if (!json_body) {
            set_err(c, 0, "internal", "cannot encode the request as JSON");
            return CLIENT_ETRANSPORT;
        }
    }
    int r = perform(c, method, path, json_body, NULL, "application/json", &s);
    if (r < 0)
        return r;
    if (out && s.mem.len > 0) {
        json_error_t jerr;
        *out = json_loadb(s.mem.p, s.mem.len, 0, &jerr);
        if (!*out) {
            set_err(c, 0, "protocol", "bad JSON from airlockd: %s", jerr.text);
            return CLIENT_ETRANSPORT;
        }
    }
    if (raw_out) {
        *raw_out = s.mem.p ? steal_ptr(&s.mem.p) : strdup("");
        if (!*raw_out) {
            set_err(c, 0, "internal", "out of memory");
            return CLIENT_ETRANSPORT;
        }
    }
    return CLIENT_OK;
}

int client_stream(struct client *c, const char *path, json_t *body, client_event_cb cb, void *ud)
{
    cleanup_sink struct sink s = {.c = c, .kind = SINK_LINES, .cb = cb, .ud = ud};
    memset(&c->err, 0, sizeof(c->err));
    if (!body) /* a stream to read (a watch): GET */
        return perform(c, "GET", path, NULL, NULL, "application/x-ndjson", &s);
    cleanup_free char *json_body = json_dumps(body, JSON_COMPACT);
    if (!json_body) {
        set_err(c, 0, "internal", "cannot encode the request as JSON");
        return CLIENT_ETRANSPORT;
    }
    return perform(c, "POST", path, json_body, NULL, "application/x-ndjson", &s);
}

static void hex(const unsigned char *md, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* sha256 of the next size bytes of f, which is then put back where it was. */
static int file_sha256(struct client *c, FILE *f, curl_off_t size, char out[65])
{
    off_t pos = ftello(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = pos >= 0 && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    char buf[65536];
    for (curl_off_t left = size; ok && left > 0;) {
        size_t want = left < (curl_off_t)sizeof(buf) ? (size_t)left : sizeof(buf);
        size_t n = fread(buf, 1, want, f);
        if (n == 0)
            break; /* shorter than its size: the upload itself will say so */
        ok = EVP_DigestUpdate(md, buf, n) == 1;
        left -= (curl_off_t)n;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, d, &dl) == 1 && fseeko(f, pos, SEEK_SET) == 0;
    EVP_MD_CTX_free(md);
    if (!ok) {
        set_err(c, 0, "io", "cannot hash the file to upload: %m");
        return CLIENT_ETRANSPORT;
    }
    hex(d, dl, out);
    return 0;
}

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* The next size bytes of f, gzip-compressed (level 1) into an anonymous
 * temporary file, rewound; its size in *out_size. NULL with c->err set. */
static FILE *gzip_to_tmp(struct client *c, FILE *f, curl_off_t size, curl_off_t *out_size)
{
    FILE *tmp = tmpfile();
    int zfd = tmp ? dup(fileno(tmp)) : -1;
    gzFile z = zfd >= 0 ? gzdopen(zfd, "wb1") : NULL;
    if (!z) {
        if (zfd >= 0)
            close(zfd);
        if (tmp)
            fclose(tmp);
        set_err(c, 0, "io", "cannot make a temporary file to compress the upload: %m");
        return NULL;
    }
    char buf[65536];
    bool ok = true;
    for (curl_off_t left = size; ok && left > 0;) {
        size_t n = fread(buf, 1, left < (curl_off_t)sizeof(buf) ? (size_t)left : sizeof(buf), f);
        if (n == 0)
            break;
        ok = gzwrite(z, buf, (unsigned)n) == (int)n;
        left -= (curl_off_t)n;
    }
    ok = gzclose(z) == Z_OK && ok && !ferror(f);
    long end = ok ? ftell(tmp) : -1;
    if (!ok || end < 0 || fseek(tmp, 0, SEEK_SET) != 0) {
        fclose(tmp);
        set_err(c, 0, "io", "cannot compress the upload: %m");
        return NULL;
    }
    *out_size = (curl_off_t)end;
    return tmp;
}

int client_upload(struct client *c, const char *path, FILE *f, curl_off_t size, json_t **out)
{
    cleanup_sink struct sink s = {.c = c, .kind = SINK_MEM};
    struct upload_src u = {.f = f, .size = size};
    memset(&c->err, 0, sizeof(c->err));
    if (out)
        *out = NULL;
    /* the agent checks the digest (of the content, not of its gzip form)
     * before it puts the file in place */
    char sha[65];
    if (file_sha256(c, f, size, sha) < 0)
        return CLIENT_ETRANSPORT;
    snprintf(u.sha_hdr, sizeof(u.sha_hdr), "X-Content-SHA256: %s", sha);
    __attribute__((cleanup(fclosep))) FILE *gz = NULL;
    if (c->gzip) {
        if (!(gz = gzip_to_tmp(c, f, size, &u.size)))
            return CLIENT_ETRANSPORT;
        u.f = gz;
        u.gzip = true;
    }
    int r = perform(c, "PUT", path, NULL, &u, "application/json", &s);
    if (r < 0)
        return r;
    if (out && s.mem.len > 0)
        *out = json_loadb(s.mem.p, s.mem.len, 0, NULL);
    return CLIENT_OK;
}

int client_download(struct client *c, const char *path, FILE *out)
{
    cleanup_sink struct sink s = {.c = c, .kind = SINK_FILE, .file = out, .sha = EVP_MD_CTX_new()};
    memset(&c->err, 0, sizeof(c->err));
    if (!s.sha || EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL) != 1) {
        set_err(c, 0, "internal", "sha256: out of memory");
        return CLIENT_ETRANSPORT;
    }
    /* A body shorter than its Content-Length is CURLE_PARTIAL_FILE (an
     * error from perform); a body whose bytes are not the ones the agent
     * hashed is caught here. */
    int r = perform(c, "GET", path, NULL, NULL, "*/*", &s);
    if (r < 0)
        return r;
    if (fflush(out) != 0) {
        set_err(c, 0, "io", "write failed: %m");
        return CLIENT_ETRANSPORT;
    }
    struct curl_header *h = NULL;
    /* gzip has no Content-Length: the daemon gives the file's size apart
     * (a cut gzip body already failed: no trailer) */
    if (curl_easy_header(c->curl, "X-Content-Length", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value &&
        strtoull(h->value, NULL, 10) != s.written) {
        set_err(c, 0, "connection", "download cut short: %llu of %s bytes arrived", (unsigned long long)s.written,
                h->value);
        return CLIENT_ETRANSPORT;
    }
    h = NULL;
    if (curl_easy_header(c->curl, "X-Content-SHA256", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        char got[2 * EVP_MAX_MD_SIZE + 1];
        if (EVP_DigestFinal_ex(s.sha, d, &dl) != 1) {
            set_err(c, 0, "internal", "sha256 failed");
            return CLIENT_ETRANSPORT;
        }
        hex(d, dl, got);
        if (strcasecmp(got, h->value) != 0) {
            set_err(c, 0, "digest_mismatch", "download corrupted: its sha256 is %s, airlockd sent %.64s", got,
                    h->value);
            return CLIENT_ETRANSPORT;
        }
    }
    return CLIENT_OK;
}

char *client_name_path(struct client *c, const char *prefix, const char *name)
{
    char *e = curl_easy_escape(c->curl, name, 0);
    char *p = NULL;
    if (e && asprintf(&p, "%s%s", prefix, e) < 0)
        p = NULL;
    curl_free(e);
    return p;
}

char *client_sandbox_path(struct client *c, const char *id, const char *suffix, const char *remote_path)
{
    char *eid = curl_easy_escape(c->curl, id, 0);
    char *ep = remote_path ? curl_easy_escape(c->curl, remote_path, 0) : NULL;
    char *p = NULL;
    int n = -1;
    if (eid && (ep || !remote_path))
        n = asprintf(&p, "/v1/sandboxes/%s%s%s%s", eid, suffix, ep ? "?path=" : "", ep ? ep : "");
    curl_free(eid);
    curl_free(ep);
    return n < 0 ? NULL : p;
}
