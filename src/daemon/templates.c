/* templates.c - the template registry, its verification, and the builds.
 * (templates.h has the store layout; tmpl_build.c does one build.) */
#include "templates.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "rmtree.h"
#include "tmpl_build.h"
#include "tmpl_spec.h"
#include "treehash.h"
#include "util.h"

#define MAX_BUILDS_KEPT 32 /* finished builds kept for GET /v1/builds/{id} */

struct tmpl {
    char name[TMPL_NAME_MAX + 1];
    char tree_hash[TREE_HASH_LEN + 1];
    char dir[PATH_MAX];    /* <state>/templates/<hex> */
    char rootfs[PATH_MAX]; /* dir/root */
    char image[PATH_MAX];  /* dir/image.erofs */
    char warm_languages[32]; /* the spec's "warm_languages", comma-joined (info.warm_languages) */
    struct template_info info;
    json_t *manifest;
    unsigned users; /* creates in flight (t->lock) */
    /* verification (vlock) */
    pthread_mutex_t vlock;
    bool verified;
    int ifd; /* inotify on every directory of the tree, -1 if none */
    struct tmpl *next;
};

struct templates {
    struct daemon *d;
    char store_dir[PATH_MAX];
    char cache_dir[PATH_MAX];
    pthread_mutex_t lock; /* list, builds, users */
    pthread_cond_t cv;
    struct tmpl *list;
    struct tmpl *retired; /* replaced while a create held them: freed at close */
    struct tmpl_build *builds[MAX_BUILDS_KEPT * 2];
    size_t n_builds;
    bool stop;
    bool builds_enabled;
    pthread_t worker;
    bool worker_started;
};

const struct template_info *tmpl_info(const struct tmpl *tp) { return &tp->info; }
json_t *tmpl_env(const struct tmpl *tp) { return json_object_get(json_object_get(tp->manifest, "spec"), "env"); }
json_t *tmpl_limits(const struct tmpl *tp)
{
    return json_object_get(json_object_get(tp->manifest, "spec"), "limits");
}

static void tmpl_free(struct tmpl *tp)
{
    if (!tp)
        return;
    if (tp->ifd >= 0)
        close(tp->ifd);
    json_decref(tp->manifest);
    pthread_mutex_destroy(&tp->vlock);
    free(tp);
}

/* From a manifest (store row or a fresh build). Takes a reference. */
static struct tmpl *tmpl_new(struct templates *t, json_t *manifest)
{
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *hash = json_string_value(json_object_get(manifest, "tree_hash"));
    if (!tmpl_name_valid(name) || !hash || strlen(hash) != TREE_HASH_LEN || strncmp(hash, "sha256:", 7) != 0)
        return NULL;
    struct tmpl *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return NULL;
    strfmt(tp->name, sizeof(tp->name), "%s", name);
    strfmt(tp->tree_hash, sizeof(tp->tree_hash), "%s", hash);
    strfmt(tp->dir, sizeof(tp->dir), "%s/%s", t->store_dir, hash + 7);
    strfmt(tp->rootfs, sizeof(tp->rootfs), "%s/root", tp->dir);
    strfmt(tp->image, sizeof(tp->image), "%s/image.erofs", tp->dir);
    tp->info.name = tp->name;
    tp->info.rootfs = tp->rootfs;
    tp->info.image = tp->image;
    tp->manifest = json_incref(manifest);
    /* borrowed from the manifest, which lives as long as tp */
    tp->info.warmup = json_string_value(json_object_get(json_object_get(manifest, "spec"), "warmup"));
    /* validated when the spec was parsed (tmpl_spec.c): "r", "javascript" */
    json_t *warm = json_object_get(json_object_get(manifest, "spec"), "warm_languages");
    if (json_is_array(warm)) {
        size_t i, off = 0;
        json_t *l;
        json_array_foreach(warm, i, l) {
            const char *s = json_string_value(l);
            int w = s ? snprintf(tp->warm_languages + off, sizeof(tp->warm_languages) - off, "%s%s", off ? "," : "", s) : -1;
            if (w < 0 || (size_t)w >= sizeof(tp->warm_languages) - off)
                break;
            off += (size_t)w;
        }
        tp->info.warm_languages = tp->warm_languages;
    }
    tp->ifd = -1;
    pthread_mutex_init(&tp->vlock, NULL);
    return tp;
}

static struct tmpl *find_locked(struct templates *t, const char *name)
{
    for (struct tmpl *tp = t->list; tp; tp = tp->next)
        if (strcmp(tp->name, name) == 0)
            return tp;
    return NULL;
}

static bool tree_referenced_locked(struct templates *t, const char *hash)
{
    for (struct tmpl *tp = t->list; tp; tp = tp->next)
        if (strcmp(tp->tree_hash, hash) == 0)
            return true;
    return false;
}

/* ---- verification */

/* Any inotify event since the last verification? Drains the queue. */
static bool tree_changed(int ifd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof(buf));
        if (n <= 0)
            return changed; /* EAGAIN: nothing (more) pending */
        changed = true;
    }
}

/* Caller holds tp->vlock. Watches first, then the hash: a change made while
 * hashing is either seen by the hash or queued as an event for next time. */
static int verify_locked(struct tmpl *tp, struct op_error *err)
{
    if (tp->verified && tp->ifd >= 0 && !tree_changed(tp->ifd))
        return 0;
    if (tp->verified && tp->ifd >= 0)
        log_warn("template %s: its tree changed; verifying it again", tp->name);
    tp->verified = false;
    if (tp->ifd >= 0)
        close(tp->ifd);
    char werr[256] = "";
    tp->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int nw = tp->ifd < 0 ? -errno : tree_watch(tp->rootfs, tp->ifd, werr, sizeof(werr));
    if (nw < 0) {
        /* still verified now, but a later change would go unnoticed until
         * the daemon restarts: say so */
        log_warn("template %s: cannot watch its tree (%s); it is verified at first use only", tp->name,
                 werr[0] ? werr : strerror(-nw));
        if (tp->ifd >= 0)
            close(tp->ifd);
        tp->ifd = -1;
    }
    char hash[TREE_HASH_LEN + 1], herr[512] = "";
    uint64_t t0 = now_mono_ms();
    int r = tree_hash(tp->rootfs, hash, NULL, herr, sizeof(herr));
    if (r < 0) {
        log_error("template %s: verify: %s", tp->name, herr);
        return op_error_set(err, -EIO, ERR_TEMPLATE_CORRUPT,
                             "template '%s' failed verification: %s; rebuild it (airlock template build) or remove it",
                             tp->name, herr);
    }
    if (strcmp(hash, tp->tree_hash) != 0) {
        log_error("template %s: tree hash %s, recorded %s", tp->name, hash, tp->tree_hash);
        return op_error_set(err, -EIO, ERR_TEMPLATE_CORRUPT,
                             "template '%s' failed verification: its tree hash is %s, the manifest records %s; "
                             "rebuild it (airlock template build) or remove it",
                             tp->name, hash, tp->tree_hash);
    }
    log_info("template %s: tree verified in %llu ms (%s)", tp->name, (unsigned long long)(now_mono_ms() - t0),
             tp->tree_hash);
    tp->verified = true;
    return 0;
}

int templates_acquire(struct templates *t, const char *name, struct tmpl **out, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    struct tmpl *tp = find_locked(t, name);
    if (tp)
        tp->users++;
    pthread_mutex_unlock(&t->lock);
    if (!tp) {
        cleanup_free char *names = NULL;
        json_t *all = templates_list_json(t);
        size_t i;
        json_t *m;
        size_t len = 0;
        FILE *f = open_memstream(&names, &len);
        if (f) {
            fputs("host", f);
            json_array_foreach(json_object_get(all, "templates"), i, m)
                fprintf(f, ", %s", json_string_value(json_object_get(m, "name")));
            fclose(f);
        }
        json_decref(all);
        return op_error_set(err, -ENOENT, ERR_NO_TEMPLATE, "no template '%s'; available: %s", name,
                             names ? names : "host");
    }
    pthread_mutex_lock(&tp->vlock);
    int r = verify_locked(tp, err);
    pthread_mutex_unlock(&tp->vlock);
    if (r < 0) {
        templates_release(t, tp);
        return r;
    }
    *out = tp;
    return 0;
}

void templates_release(struct templates *t, struct tmpl *tp)
{
    pthread_mutex_lock(&t->lock);
    tp->users--;
    pthread_mutex_unlock(&t->lock);
}

/* ---- listing, removal */

static json_t *summary_json(const struct tmpl *tp)
{
    json_t *m = tp->manifest;
    return json_pack("{s:s,s:O?,s:s,s:O?,s:O?,s:O?,s:i}", "name", tp->name, "description",
                     json_object_get(m, "description"), "tree_hash", tp->tree_hash, "built_at",
                     json_object_get(m, "built_at"), "size_bytes", json_object_get(m, "size_bytes"), "suite",
                     json_object_get(m, "suite"), "packages", (int)json_array_size(json_object_get(m, "packages")));
}

json_t *templates_list_json(struct templates *t)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&t->lock);
    for (struct tmpl *tp = t->list; tp; tp = tp->next)
        json_array_append_new(arr, summary_json(tp));
    pthread_mutex_unlock(&t->lock);
    return json_pack("{s:o}", "templates", arr);
}

int templates_get_json(struct templates *t, const char *name, json_t **out, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    struct tmpl *tp = find_locked(t, name);
    json_t *m = tp ? json_deep_copy(tp->manifest) : NULL;
    if (m)
        json_object_set_new(m, "path", json_string(tp->dir));
    pthread_mutex_unlock(&t->lock);
    if (!tp)
        return op_error_set(err, -ENOENT, ERR_NO_TEMPLATE, "no template '%s'", name);
    *out = m;
    return m ? 0 : op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
}

int templates_remove(struct templates *t, const char *name, unsigned (*live_count)(void *ctx, const char *name),
                     void *ctx, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    struct tmpl *tp = find_locked(t, name);
    if (!tp) {
        pthread_mutex_unlock(&t->lock);
        return op_error_set(err, -ENOENT, ERR_NO_TEMPLATE, "no template '%s'", name);
    }
    /* a create registers its sandbox before it releases the template, so
     * a create in flight is counted by one or the other (live_count is
     * asked under t->lock for that reason) */
    unsigned live = live_count ? live_count(ctx, name) : 0;
    if (live || tp->users) {
        pthread_mutex_unlock(&t->lock);
        return op_error_set(err, -EBUSY, ERR_TEMPLATE_IN_USE,
                             "template '%s' is used by %u live sandbox(es); delete them first", name,
                             live ? live : tp->users);
    }
    int r = store_template_delete(t->d->store, name);
    if (r < 0 && r != -ENOENT) {
        pthread_mutex_unlock(&t->lock);
        return op_error_set(err, r, ERR_INTERNAL, "cannot remove the record of template '%s'", name);
    }
    struct tmpl **pp = &t->list;
    while (*pp != tp)
        pp = &(*pp)->next;
    *pp = tp->next;
    bool shared = tree_referenced_locked(t, tp->tree_hash);
    pthread_mutex_unlock(&t->lock);
    if (!shared) {
        r = rmtree(tp->dir);
        if (r < 0)
            log_warn("template %s: remove %s: %s", name, tp->dir, strerror(-r));
    }
    log_info("template %s removed (%s)", name, tp->tree_hash);
    tmpl_free(tp);
    return 0;
}

/* ---- builds */

static struct tmpl_build *find_build_locked(struct templates *t, const char *id)
{
    for (size_t i = 0; i < t->n_builds; i++)
        if (strcmp(t->builds[i]->id, id) == 0)
            return t->builds[i];
    return NULL;
}

/* Drop the oldest finished builds beyond MAX_BUILDS_KEPT. */
static void trim_builds_locked(struct templates *t)
{
    size_t i = 0;
    while (t->n_builds > MAX_BUILDS_KEPT && i < t->n_builds) {
        if (t->builds[i]->state == BUILD_SUCCEEDED || t->builds[i]->state == BUILD_FAILED) {
            tmpl_build_free(t->builds[i]);
            memmove(&t->builds[i], &t->builds[i + 1], (t->n_builds - i - 1) * sizeof(t->builds[0]));
            t->n_builds--;
        } else {
            i++;
        }
    }
}

int templates_build_start(struct templates *t, json_t *spec_in, bool use_cache, json_t **out, struct op_error *err)
{
    struct tmpl_spec spec;
    char perr[256];
    if (tmpl_spec_parse(spec_in, &spec, perr, sizeof(perr)) < 0)
        return op_error_set(err, -EINVAL, ERR_INVALID_SPEC, "%s", perr);
    if (!t->builds_enabled) {
        tmpl_spec_clear(&spec);
        return op_error_set(err, -EPERM, ERR_BUILDS_OFF, "template builds are off in this daemon");
    }
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_builds; i++) {
        struct tmpl_build *b = t->builds[i];
        if (strcmp(b->name, spec.name) == 0 && (b->state == BUILD_QUEUED || b->state == BUILD_RUNNING)) {
            pthread_mutex_unlock(&t->lock);
            tmpl_spec_clear(&spec);
            return op_error_set(err, -EBUSY, ERR_BUILD_BUSY, "template '%s' is already being built (%s)",
                                 spec.name, b->id);
        }
    }
    if (t->n_builds >= ARRAY_SIZE(t->builds)) {
        pthread_mutex_unlock(&t->lock);
        tmpl_spec_clear(&spec);
        return op_error_set(err, -EAGAIN, ERR_TOO_MANY_BUILDS, "too many template builds queued");
    }
    struct tmpl_build *b = NULL;
    int r = tmpl_build_new(&spec, use_cache, &b);
    if (r < 0) {
        pthread_mutex_unlock(&t->lock);
        tmpl_spec_clear(&spec);
        return op_error_set(err, r, ERR_INTERNAL, "cannot start a build: %s", strerror(-r));
    }
    t->builds[t->n_builds++] = b;
    *out = tmpl_build_json(b, 0);
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->lock);
    log_info("template %s: build %s queued (spec %s)", b->name, b->id, b->spec_hash);
    return 0;
}

int templates_build_json(struct templates *t, const char *id, unsigned since, json_t **out, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    struct tmpl_build *b = find_build_locked(t, id);
    if (b)
        *out = tmpl_build_json(b, since);
    pthread_mutex_unlock(&t->lock);
    return b ? 0 : op_error_set(err, -ENOENT, ERR_NOT_FOUND, "no build '%s'", id);
}

/* A build finished: its tree replaces the template of that name. */
static int install_template(struct templates *t, json_t *manifest)
{
    struct tmpl *tp = tmpl_new(t, manifest);
    if (!tp)
        return -ENOMEM;
    /* just hashed by the build: watch it from now on, verified */
    tp->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    char werr[256] = "";
    if (tp->ifd >= 0 && tree_watch(tp->rootfs, tp->ifd, werr, sizeof(werr)) >= 0) {
        tp->verified = true;
    } else {
        if (tp->ifd >= 0)
            close(tp->ifd);
        tp->ifd = -1; /* verified at first use instead */
    }
    char *text = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        tmpl_free(tp);
        return -ENOMEM;
    }
    int r = store_template_put(t->d->store, tp->name,
                               json_string_value(json_object_get(manifest, "spec_hash")), tp->tree_hash,
                               (uint64_t)json_integer_value(json_object_get(manifest, "built_at_ms")), text);
    free(text);
    if (r < 0) {
        tmpl_free(tp);
        return r;
    }
    pthread_mutex_lock(&t->lock);
    struct tmpl **pp = &t->list;
    while (*pp && strcmp((*pp)->name, tp->name) != 0)
        pp = &(*pp)->next;
    struct tmpl *old = *pp;
    if (old && old->users == 0) {
        /* the old tree stays on disk: a live sandbox may still have it
         * mounted; unreferenced trees go at the next daemon start */
        tp->next = old->next;
        *pp = tp;
        tmpl_free(old);
    } else if (old) {
        /* a create holds the old entry: out of the list, but its memory
         * stays until the daemon stops (rare, and small) */
        tp->next = old->next;
        *pp = tp;
        old->next = t->retired;
        t->retired = old;
    } else {
        tp->next = t->list;
        t->list = tp;
    }
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* At start, before any build: verify every template in the background, so
 * the first create on one does not pay for hashing its tree (seconds for a
 * big one). A create that comes first waits on vlock or verifies itself. */
static void verify_all(struct templates *t)
{
    char names[64][TMPL_NAME_MAX + 1];
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (struct tmpl *tp = t->list; tp && n < ARRAY_SIZE(names); tp = tp->next)
        snprintf(names[n++], sizeof(names[0]), "%s", tp->name);
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&t->lock);
        bool stop = t->stop;
        pthread_mutex_unlock(&t->lock);
        if (stop)
            return;
        struct tmpl *tp = NULL;
        struct op_error err = {0};
        if (templates_acquire(t, names[i], &tp, &err) == 0) /* logs a failure itself */
            templates_release(t, tp);
    }
}

static void *worker_main(void *arg)
{
    struct templates *t = arg;
    verify_all(t);
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct tmpl_build *next = NULL;
        for (size_t i = 0; !next && i < t->n_builds; i++)
            if (t->builds[i]->state == BUILD_QUEUED)
                next = t->builds[i];
        if (t->stop)
            break;
        if (!next) {
            pthread_cond_wait(&t->cv, &t->lock);
            continue;
        }
        next->state = BUILD_RUNNING;
        pthread_mutex_unlock(&t->lock);

        json_t *manifest = NULL;
        int r = tmpl_build_run(next, t->store_dir, t->cache_dir, &t->lock, &manifest);
        if (r == 0 && (r = install_template(t, manifest)) < 0)
            tmpl_build_fail(next, &t->lock, "record the template: %s", strerror(-r));
        json_decref(manifest);

        pthread_mutex_lock(&t->lock);
        tmpl_build_finish(next, r == 0);
        log_info("template %s: build %s %s", next->name, next->id, r == 0 ? "succeeded" : "failed");
        trim_builds_locked(t);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* ---- open / close */

/* Trees no record names, and builds a dead daemon left half done: nothing
 * runs yet, so nothing can have them mounted. */
static void collect_garbage(struct templates *t)
{
    DIR *dir = opendir(t->store_dir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.' && (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0))
            continue;
        char hash[TREE_HASH_LEN + 8];
        strfmt(hash, sizeof(hash), "sha256:%s", de->d_name);
        if (de->d_name[0] != '.' && tree_referenced_locked(t, hash))
            continue;
        char path[PATH_MAX];
        strfmt(path, sizeof(path), "%s/%s", t->store_dir, de->d_name);
        int r = rmtree(path);
        log_info("templates: removed unreferenced %s%s%s", path, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
    }
    closedir(dir);
}

int templates_open(struct daemon *d, const char *cache_dir, bool builds, struct templates **out)
{
    struct templates *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->d = d;
    t->builds_enabled = builds;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cv, NULL);
    strfmt(t->store_dir, sizeof(t->store_dir), "%s/templates", d->cfg.state_dir);
    strfmt(t->cache_dir, sizeof(t->cache_dir), "%s", cache_dir ? cache_dir : "");
    if (mkdir(t->store_dir, 0700) < 0 && errno != EEXIST) {
        int r = -errno;
        log_error("templates: mkdir %s: %s", t->store_dir, strerror(errno));
        templates_close(t);
        return r;
    }
    json_t *rows = NULL;
    int r = store_template_list(d->store, &rows);
    if (r < 0) {
        templates_close(t);
        return r;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rows, "templates"), i, m) {
        struct tmpl *tp = tmpl_new(t, m);
        if (!tp) {
            log_error("templates: skipping a record without a valid name and tree hash");
            continue;
        }
        tp->next = t->list;
        t->list = tp;
    }
    json_decref(rows);
    collect_garbage(t);
    if ((r = -pthread_create(&t->worker, NULL, worker_main, t)) < 0) {
        log_error("templates: start the build worker: %s", strerror(-r));
        templates_close(t);
        return r;
    }
    t->worker_started = true;
    *out = t;
    return 0;
}

void templates_close(struct templates *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    for (size_t i = 0; i < t->n_builds; i++)
        tmpl_build_cancel(t->builds[i]);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->lock);
    if (t->worker_started)
        pthread_join(t->worker, NULL);
    for (size_t i = 0; i < t->n_builds; i++)
        tmpl_build_free(t->builds[i]);
    for (struct tmpl **l = &t->list; l; l = l == &t->list ? &t->retired : NULL)
        while (*l) {
            struct tmpl *next = (*l)->next;
            tmpl_free(*l);
            *l = next;
        }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
