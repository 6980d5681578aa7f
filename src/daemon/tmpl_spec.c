/* tmpl_spec.c - parse and validate a template spec (tmpl_spec.h). */
#include "tmpl_spec.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define MAX_PACKAGES 256
#define MAX_FILES 64
#define MAX_FILE_BYTES (1u << 20) /* all files together */
#define MAX_WARMUP_BYTES (64u << 10)
#define MAX_ENV_BYTES (16u << 10)
#define MAX_DESCRIPTION 512

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int charset_ok(const char *s, const char *first, const char *rest)
{
    if (!s[0] || !strchr(first, s[0]))
        return 0;
    for (const char *p = s + 1; *p; p++)
        if (!strchr(rest, *p))
            return 0;
    return 1;
}

#define LOWER_DIGIT "abcdefghijklmnopqrstuvwxyz0123456789"

int tmpl_name_valid(const char *name)
{
    return name && strlen(name) <= TMPL_NAME_MAX && charset_ok(name, LOWER_DIGIT, LOWER_DIGIT "_-");
}

/* Debian package name (policy 5.6.1), optionally "=version" to pin it. */
static int package_valid(const char *p)
{
    if (strlen(p) > 128)
        return 0;
    char name[129];
    snprintf(name, sizeof(name), "%s", p);
    char *eq = strchr(name, '=');
    if (eq) {
        *eq = '\0';
        if (!charset_ok(eq + 1, "0123456789", LOWER_DIGIT "ABCDEFGHIJKLMNOPQRSTUVWXYZ.+~:-"))
            return 0;
    }
    return strlen(name) >= 2 && charset_ok(name, LOWER_DIGIT, LOWER_DIGIT "+.-");
}

/* A file the daemon writes into the tree. Only under /usr: the sandbox sees
 * the template's /usr, while its /etc is generated per sandbox and its other
 * directories are scratch (mnt.c). No "..", no empty or "." components. */
static int file_path_valid(const char *p)
{
    if (strncmp(p, "/usr/", 5) != 0 || strlen(p) > 255 || p[strlen(p) - 1] == '/')
        return 0;
    const char *c = p + 1;
    while (*c) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
                return 0;
        c += len + (slash ? 1 : 0);
    }
    return 1;
}

static int parse_mode(json_t *m, unsigned *out)
{
    if (!m) {
        *out = 0644;
        return 0;
    }
    if (!json_is_string(m))
        return -1;
    const char *s = json_string_value(m);
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 8);
    if (!s[0] || *end || v > 0777) /* no setuid/setgid/sticky: see tree_sanitize */
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int check_keys(json_t *obj, const char *const *allowed, const char *where, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok)
            return bad(err, errlen, "%s: unknown field '%s'", where, key);
    }
    return 0;
}

static int parse_files(json_t *files, json_t **out, char *err, size_t errlen)
{
    if (files && !json_is_array(files))
        return bad(err, errlen, "files must be an array of {path, content, mode}");
    if (json_array_size(files) > MAX_FILES)
        return bad(err, errlen, "files: at most %d entries", MAX_FILES);
    static const char *const keys[] = {"path", "content", "mode", NULL};
    json_t *arr = json_array();
    size_t i, total = 0;
    json_t *f;
    json_array_foreach(files, i, f) {
        char where[32];
        snprintf(where, sizeof(where), "files[%zu]", i);
        unsigned mode = 0;
        json_t *path = json_object_get(f, "path"), *content = json_object_get(f, "content");
        int r = !json_is_object(f) ? bad(err, errlen, "%s must be an object", where)
                                   : check_keys(f, keys, where, err, errlen);
        if (r == 0 && (!json_is_string(path) || !file_path_valid(json_string_value(path))))
            r = bad(err, errlen, "%s.path must be an absolute path under /usr/ without '..' (the sandbox sees only "
                    "the template's /usr)", where);
        if (r == 0 && !json_is_string(content))
            r = bad(err, errlen, "%s.content must be a string", where);
        if (r == 0 && parse_mode(json_object_get(f, "mode"), &mode) < 0)
            r = bad(err, errlen, "%s.mode must be an octal string up to \"0777\"", where);
        if (r == 0 && (total += json_string_length(content)) > MAX_FILE_BYTES)
            r = bad(err, errlen, "files: more than %u KiB of content in all", MAX_FILE_BYTES >> 10);
        if (r < 0) {
            json_decref(arr);
            return r;
        }
        char mode_s[8];
        snprintf(mode_s, sizeof(mode_s), "0%o", mode);
        json_array_append_new(arr, json_pack("{s:O,s:O,s:s}", "path", path, "content", content, "mode", mode_s));
    }
    *out = arr;
    return 0;
}

static int parse_env(json_t *env, json_t **out, char *err, size_t errlen)
{
    if (env && !json_is_object(env))
        return bad(err, errlen, "env must be an object of strings");
    const char *k;
    json_t *v;
    size_t total = 0;
    json_object_foreach(env, k, v) {
        if (!charset_ok(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_",
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") ||
            strlen(k) > 128)
            return bad(err, errlen, "env: '%.64s' is not a variable name", k);
        if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)))
            return bad(err, errlen, "env.%s must be a string without NUL", k);
        if ((total += strlen(k) + json_string_length(v) + 2) > MAX_ENV_BYTES)
            return bad(err, errlen, "env: more than %u KiB", MAX_ENV_BYTES >> 10);
    }
    *out = env ? json_deep_copy(env) : json_object();
    return 0;
}

static int parse_limits(json_t *lim, json_t **out, char *err, size_t errlen)
{
    if (lim && !json_is_object(lim))
        return bad(err, errlen, "limits must be an object {memory_mb, cpus, timeout_s}");
    static const char *const keys[] = {"memory_mb", "cpus", "timeout_s", NULL};
    if (lim && check_keys(lim, keys, "limits", err, errlen) < 0)
        return -EINVAL;
    json_t *o = json_object();
    json_t *m = json_object_get(lim, "memory_mb"), *c = json_object_get(lim, "cpus"),
           *t = json_object_get(lim, "timeout_s");
    /* the daemon's own ceilings still apply when a sandbox is created */
    if (m && !(json_is_integer(m) && json_integer_value(m) >= 64 && json_integer_value(m) <= 1 << 20))
        goto fail_m;
    if (c && !(json_is_number(c) && json_number_value(c) >= 0.1 && json_number_value(c) <= 1024))
        goto fail_c;
    if (t && !(json_is_integer(t) && json_integer_value(t) >= 1 && json_integer_value(t) <= 7 * 86400))
        goto fail_t;
    if (m)
        json_object_set(o, "memory_mb", m);
    if (c)
        json_object_set_new(o, "cpus", json_real(json_number_value(c)));
    if (t)
        json_object_set(o, "timeout_s", t);
    *out = o;
    return 0;
fail_m:
    json_decref(o);
    return bad(err, errlen, "limits.memory_mb must be an integer >= 64");
fail_c:
    json_decref(o);
    return bad(err, errlen, "limits.cpus must be a number >= 0.1");
fail_t:
    json_decref(o);
    return bad(err, errlen, "limits.timeout_s must be an integer between 1 and 604800");
}

static int spec_hash(json_t *canon, char *out)
{
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -ENOMEM;
    unsigned char d[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, TMPL_BUILDER_VERSION "\n", sizeof(TMPL_BUILDER_VERSION)) == 1 &&
             EVP_DigestUpdate(md, text, strlen(text)) == 1 && EVP_DigestFinal_ex(md, d, NULL) == 1;
    EVP_MD_CTX_free(md);
    free(text);
    if (!ok)
        return -ENOMEM;
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int tmpl_spec_parse(json_t *in, struct tmpl_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(in))
        return bad(err, errlen, "a template spec is a JSON object");
    static const char *const keys[] = {"name",  "description", "suite",  "mirror", "packages",
                                       "files", "env",         "warmup", "limits", "warm_languages", NULL};
    if (check_keys(in, keys, "spec", err, errlen) < 0)
        return -EINVAL;

    const char *name = json_string_value(json_object_get(in, "name"));
    if (!tmpl_name_valid(name))
        return bad(err, errlen, "name must be 1-%d characters of a-z 0-9 _ - (starting with a letter or digit)",
                   TMPL_NAME_MAX);
    if (strcmp(name, "host") == 0)
        return bad(err, errlen, "name 'host' is the built-in template (the host's /usr)");
    json_t *desc = json_object_get(in, "description");
    if (desc && !(json_is_string(desc) && json_string_length(desc) <= MAX_DESCRIPTION))
        return bad(err, errlen, "description must be a string of at most %d bytes", MAX_DESCRIPTION);
    const char *suite = json_string_value(json_object_get(in, "suite"));
    if (!suite || strlen(suite) > 32 || !charset_ok(suite, "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz-"))
        return bad(err, errlen, "suite must be a Debian suite name such as \"bookworm\"");
    json_t *mirror = json_object_get(in, "mirror");
    const char *mirror_s = mirror ? json_string_value(mirror) : TMPL_DEFAULT_MIRROR;
    if (!mirror_s || strlen(mirror_s) > 200 ||
        !(strncmp(mirror_s, "http://", 7) == 0 || strncmp(mirror_s, "https://", 8) == 0) ||
        strpbrk(mirror_s, " \t\r\n\"'\\"))
        return bad(err, errlen, "mirror must be an http:// or https:// URL of a Debian archive");

    json_t *pkgs = json_object_get(in, "packages");
    if (!json_is_array(pkgs) || json_array_size(pkgs) == 0 || json_array_size(pkgs) > MAX_PACKAGES)
        return bad(err, errlen, "packages must be a non-empty array of at most %d Debian package names", MAX_PACKAGES);
    /* sorted and without duplicates: the order of a package list changes
     * nothing apt installs, so it must not change the spec hash either */
    const char *names[MAX_PACKAGES];
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(pkgs, i, p) {
        if (!json_is_string(p) || !package_valid(json_string_value(p)))
            return bad(err, errlen, "packages[%zu] is not a Debian package name (name or name=version)", i);
        names[n++] = json_string_value(p);
    }
    qsort(names, n, sizeof(names[0]), cmp_str);
    json_t *sorted = json_array();
    for (i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            json_array_append_new(sorted, json_string(names[i]));

    json_t *warmup = json_object_get(in, "warmup");
    if (warmup && !(json_is_string(warmup) && json_string_length(warmup) <= MAX_WARMUP_BYTES)) {
        json_decref(sorted);
        return bad(err, errlen, "warmup must be Python code (a string) of at most %u KiB", MAX_WARMUP_BYTES >> 10);
    }

    /* the runners besides Python's its sandboxes start with (src/agent/lang.c) */
    json_t *warm = json_object_get(in, "warm_languages");
    if (warm) {
        size_t k;
        json_t *l;
        bool ok = json_is_array(warm) && json_array_size(warm) <= 2;
        json_array_foreach(warm, k, l) {
            const char *s = json_string_value(l);
            ok = ok && s && (strcmp(s, "r") == 0 || strcmp(s, "javascript") == 0);
        }
        if (!ok) {
            json_decref(sorted);
            return bad(err, errlen, "warm_languages must be an array of \"r\" and/or \"javascript\"");
        }
    }

    json_t *files = NULL, *env = NULL, *limits = NULL;
    int r;
    if ((r = parse_files(json_object_get(in, "files"), &files, err, errlen)) < 0 ||
        (r = parse_env(json_object_get(in, "env"), &env, err, errlen)) < 0 ||
        (r = parse_limits(json_object_get(in, "limits"), &limits, err, errlen)) < 0) {
        json_decref(sorted);
        json_decref(files);
        json_decref(env);
        return r;
    }
    out->canon = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:s,s:o}", "name", name, "description",
                           desc ? json_string_value(desc) : "", "suite", suite, "mirror", mirror_s, "packages",
                           sorted, "files", files, "env", env, "warmup", warmup ? json_string_value(warmup) : "",
                           "limits", limits);
    if (!out->canon)
        return bad(err, errlen, "out of memory");
    /* only when given: a spec without it keeps the hash it always had */
    if (warm && json_object_set(out->canon, "warm_languages", warm) < 0) {
        tmpl_spec_clear(out);
        return bad(err, errlen, "out of memory");
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    if (spec_hash(out->canon, out->hash) < 0) {
        tmpl_spec_clear(out);
        return bad(err, errlen, "out of memory");
    }
    return 0;
}

void tmpl_spec_clear(struct tmpl_spec *s)
{
    json_decref(s->canon);
    s->canon = NULL;
}
