/* cmd_files.c - upload and download: files streamed in and out of a sandbox,
 * both verified end to end (client.c sends and checks X-Content-SHA256). */
#include "cli.h"

#include "util.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define cleanup_file __attribute__((cleanup(fclosep)))

int do_upload(struct client *c, const char *id, const char *local, const char *remote, json_t **out)
{
    cleanup_file FILE *f = fopen(local, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "airlock: cannot open %s: %m\n", local);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "airlock: %s is not a regular file\n", local);
        return -1;
    }
    /* a remote path ending in '/' is a directory: the file keeps its name */
    cleanup_free char *named = NULL;
    size_t rl = strlen(remote);
    if (rl && remote[rl - 1] == '/') {
        const char *base = strrchr(local, '/');
        base = base ? base + 1 : local;
        if (!*base || asprintf(&named, "%s%s", remote, base) < 0) {
            fprintf(stderr, "airlock: cannot name the upload of %s into %s\n", local, remote);
            return -1;
        }
        remote = named;
    }
    cleanup_free char *path = client_sandbox_path(c, id, "/files", remote);
    if (!path || client_upload(c, path, f, (curl_off_t)st.st_size, out) < 0) {
        client_print_error(c);
        return -1;
    }
    return 0;
}

static int upload_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    ctx->client.gzip = cli_opt(ctx, "gzip")->count > 0;
    json_auto_t *out = NULL;
    if (do_upload(&ctx->client, argv[0], argv[1], argv[2], &out) < 0)
        return EXIT_ERROR;
    cleanup_free char *raw = ctx->json && out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (raw)
        print_raw(raw);
    else if (!ctx->json)
        printf("%s -> %s\n", argv[1], argv[2]);
    return 0;
}

static const struct cli_option gzip_options[] = {
    {.name = "gzip", .help = "compress on the way (Content-Encoding: gzip; the sha256 is still of the file)"},
    {0},
};

const struct cli_command cmd_upload = {
    .name = "upload",
    .summary = "copy a local file into a sandbox",
    .args = "ID LOCAL REMOTE",
    .description = "Copy the local file LOCAL to REMOTE in the sandbox (streamed).",
    .options = gzip_options,
    .min_args = 3,
    .max_args = 3,
    .needs_client = true,
    .run = upload_run,
};

/* Download into a file next to LOCAL and rename it on success, so a failed
 * download never leaves a truncated LOCAL behind. */
static int download_to(struct cli_ctx *ctx, const char *path, const char *local)
{
    cleanup_free char *tmp = NULL;
    if (asprintf(&tmp, "%s.airlock-XXXXXX", local) < 0) {
        tmp = NULL;
        return EXIT_ERROR;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "airlock: cannot create %s: %m\n", tmp);
        return EXIT_ERROR;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return EXIT_ERROR;
    }
    int dr = client_download(&ctx->client, path, f);
    int cr = fclose(f);
    if (dr < 0 || cr != 0 || rename(tmp, local) < 0) {
        if (dr < 0)
            client_print_error(&ctx->client);
        else
            fprintf(stderr, "airlock: cannot write %s: %m\n", local);
        unlink(tmp);
        return EXIT_ERROR;
    }
    return 0;
}

static int download_run(struct cli_ctx *ctx, int argc, char **argv)
{
    ctx->client.gzip = cli_opt(ctx, "gzip")->count > 0;
    const char *id = argv[0], *remote = argv[1];
    cleanup_free char *rcopy = strdup(remote);
    if (!rcopy)
        return EXIT_ERROR;
    const char *local = argc == 3 ? argv[2] : basename(rcopy);
    if (!*local || strcmp(local, "/") == 0 || strcmp(local, "..") == 0 || strcmp(local, ".") == 0)
        return cli_usage_error(ctx->cmd, "cannot derive a local name from '%s'; give LOCAL", remote);
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/files", remote);
    if (!path)
        return EXIT_ERROR;
    if (strcmp(local, "-") == 0) {
        if (client_download(&ctx->client, path, stdout) < 0) {
            client_print_error(&ctx->client);
            return EXIT_ERROR;
        }
        return 0;
    }
    int rc = download_to(ctx, path, local);
    if (rc == 0 && ctx->json)
        printf("{\"path\":\"%s\",\"local\":\"%s\"}\n", remote, local);
    return rc;
}

const struct cli_command cmd_download = {
    .name = "download",
    .summary = "copy a file out of a sandbox",
    .args = "ID REMOTE [LOCAL|-]",
    .description = "Copy REMOTE out of the sandbox to LOCAL (default: its base name; '-' = stdout).",
    .options = gzip_options,
    .min_args = 2,
    .max_args = 3,
    .needs_client = true,
    .run = download_run,
};
