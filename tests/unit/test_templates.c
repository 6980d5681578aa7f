/* test_templates.c - the tree hash (what changes it, what does not), the
 * sanitizer, and spec validation/canonical hashing. Real files in a
 * temporary directory; no daemon. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tmpl_spec.h"
#include "treehash.h"
#include "unit.h"

static char root[64];

static void put(const char *rel, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    CHECK(chmod(p, mode) == 0);
}

static void hash(char *out)
{
    char err[256] = "";
    struct tree_stats st;
    int r = tree_hash(root, out, &st, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "tree_hash: %s\n", err);
    CHECK(r == 0);
    CHECK(strncmp(out, "sha256:", 7) == 0 && strlen(out) == TREE_HASH_LEN);
}

static void test_tree_hash(void)
{
    char p[256], h0[80], h1[80], h2[80];
    snprintf(p, sizeof(p), "%s/usr", root);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/usr/bin", root);
    CHECK(mkdir(p, 0755) == 0);
    put("usr/bin/tool", "#!/bin/sh\necho hi\n", 0755);
    put("usr/a.txt", "a\n", 0644);
    snprintf(p, sizeof(p), "%s/bin", root);
    CHECK(symlink("usr/bin", p) == 0);
    hash(h0);

    /* the same content again: the same hash; timestamps do not count */
    hash(h1);
    CHECK_STREQ(h0, h1);
    struct timespec old[2] = {{.tv_sec = 1}, {.tv_sec = 1}};
    snprintf(p, sizeof(p), "%s/usr/a.txt", root);
    CHECK(utimensat(AT_FDCWD, p, old, 0) == 0);
    hash(h1);
    CHECK_STREQ(h0, h1);

    /* one byte of content, a mode bit, a link target, a new empty file: each changes it */
    put("usr/a.txt", "b\n", 0644);
    hash(h1);
    CHECK(strcmp(h0, h1) != 0);
    put("usr/a.txt", "a\n", 0644);
    hash(h1);
    CHECK_STREQ(h0, h1);
    CHECK(chmod(p, 0666) == 0);
    hash(h1);
    CHECK(strcmp(h0, h1) != 0);
    CHECK(chmod(p, 0644) == 0);
    snprintf(p, sizeof(p), "%s/bin", root);
    CHECK(unlink(p) == 0 && symlink("usr/sbin", p) == 0);
    hash(h1);
    CHECK(strcmp(h0, h1) != 0);
    CHECK(unlink(p) == 0 && symlink("usr/bin", p) == 0);
    hash(h1);
    CHECK_STREQ(h0, h1);
    put("usr/empty", "", 0644);
    hash(h2);
    CHECK(strcmp(h0, h2) != 0);
    snprintf(p, sizeof(p), "%s/usr/empty", root);
    CHECK(unlink(p) == 0);

    /* the sanitizer strips set-user-ID / set-group-ID from files, and only that */
    put("usr/bin/su", "x", 04755);
    put("usr/bin/wall", "x", 02755);
    int n = tree_sanitize(root, p, sizeof(p));
    CHECK(n == 2);
    struct stat st;
    snprintf(p, sizeof(p), "%s/usr/bin/su", root);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
    snprintf(p, sizeof(p), "%s/usr/bin/wall", root);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(tree_sanitize(root, p, sizeof(p)) == 0);

    /* watches: a change below the root is reported */
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK(ifd >= 0);
    CHECK(tree_watch(root, ifd, p, sizeof(p)) == 3); /* root, usr, usr/bin */
    char buf[4096];
    CHECK(read(ifd, buf, sizeof(buf)) < 0);
    put("usr/bin/tool", "changed\n", 0755);
    CHECK(read(ifd, buf, sizeof(buf)) > 0);
    close(ifd);

    /* a missing root is an error naming it */
    char err[256] = "";
    CHECK(tree_hash("/nonexistent-airlock", h1, NULL, err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "/nonexistent-airlock") != NULL);
}

static int parse(const char *text, struct tmpl_spec *s, char *err, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    CHECK(j != NULL);
    int r = tmpl_spec_parse(j, s, err, len);
    json_decref(j);
    return r;
}

static void test_spec(void)
{
    struct tmpl_spec a, b;
    char err[256];
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"bb\",\"python3\",\"bb\"]}", &a, err,
                sizeof(err)) == 0);
    /* defaults filled in, packages sorted and deduplicated */
    CHECK_STREQ(json_string_value(json_object_get(a.canon, "mirror")), TMPL_DEFAULT_MIRROR);
    CHECK(json_array_size(json_object_get(a.canon, "packages")) == 2);
    /* package order and key order do not change the spec hash... */
    CHECK(parse("{\"packages\":[\"python3\",\"bb\"],\"suite\":\"bookworm\",\"name\":\"t\"}", &b, err,
                sizeof(err)) == 0);
    CHECK_STREQ(a.hash, b.hash);
    tmpl_spec_clear(&b);
    /* ...anything else does */
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"python3\",\"bb\"],\"warmup\":\"import os\"}",
                &b, err, sizeof(err)) == 0);
    CHECK(strcmp(a.hash, b.hash) != 0);
    tmpl_spec_clear(&b);
    /* warm_languages: kept in the canonical spec (and so the hash) only when given */
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"python3\",\"bb\"],\"warm_languages\":[\"r\"]}",
                &b, err, sizeof(err)) == 0);
    CHECK(strcmp(a.hash, b.hash) != 0);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(b.canon, "warm_languages"), 0)), "r");
    tmpl_spec_clear(&b);
    CHECK(json_object_get(a.canon, "warm_languages") == NULL);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"bb\"],\"warm_languages\":[\"python\"]}",
                &b, err, sizeof(err)) < 0);
    CHECK(strstr(err, "warm_languages") != NULL);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"bb\"],\"warm_languages\":\"r\"}",
                &b, err, sizeof(err)) < 0);
    tmpl_spec_clear(&a);

    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"python3=3.11.2-1+b1\"]}", &a, err,
                sizeof(err)) == 0);
    tmpl_spec_clear(&a);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"-oAPT::x=1\"]}", &a, err, sizeof(err)) < 0);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"p\"],\"files\":[{\"path\":\"/usr/x/./y\","
                "\"content\":\"\"}]}",
                &a, err, sizeof(err)) < 0);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"pp\"],\"files\":[{\"path\":\"/usr/lib/x\","
                "\"content\":\"c\",\"mode\":\"0755\"}]}",
                &a, err, sizeof(err)) == 0);
    tmpl_spec_clear(&a);
    CHECK(parse("{\"name\":\"t\",\"suite\":\"bookworm\",\"packages\":[\"pp\"],\"mirror\":\"http://x/ y\"}", &a, err,
                sizeof(err)) < 0);
    CHECK(strstr(err, "mirror") != NULL);
    CHECK(tmpl_name_valid("datasci-2") && !tmpl_name_valid("-x") && !tmpl_name_valid("") &&
          !tmpl_name_valid("a/b") && !tmpl_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
}

/* Every spec shipped in templates/ is valid and named after its file: a typo
 * there would otherwise surface only when a user builds it. */
static void test_shipped_specs(const char *dir)
{
    glob_t g;
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof(pattern), "%s/*.json", dir);
    CHECK(glob(pattern, 0, NULL, &g) == 0);
    CHECK(g.gl_pathc >= 3); /* python, datasci, documents */
    for (size_t i = 0; i < g.gl_pathc; i++) {
        json_error_t jerr;
        json_t *j = json_load_file(g.gl_pathv[i], 0, &jerr);
        if (!j)
            fprintf(stderr, "%s:%d: %s\n", g.gl_pathv[i], jerr.line, jerr.text);
        CHECK(j != NULL);
        struct tmpl_spec s;
        char err[256] = "";
        int r = tmpl_spec_parse(j, &s, err, sizeof(err));
        if (r < 0)
            fprintf(stderr, "%s: %s\n", g.gl_pathv[i], err);
        CHECK(r == 0);
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        const char *name = json_string_value(json_object_get(s.canon, "name"));
        CHECK(name && strncmp(base, name, strlen(name)) == 0 && strcmp(base + strlen(name), ".json") == 0);
        tmpl_spec_clear(&s);
        json_decref(j);
    }
    globfree(&g);
}

int main(int argc, char **argv)
{
    snprintf(root, sizeof(root), "/tmp/airlock-unit-tree.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_tree_hash();
    test_spec();
    if (argc > 1)
        test_shipped_specs(argv[1]);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    UNIT_DONE();
}
