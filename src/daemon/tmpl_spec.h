/* tmpl_spec.h - the template spec: what a team declares goes into a sandbox.
 *
 * JSON, because jansson already parses everything else airlockd reads: a
 * TOML or YAML spec would add a parser (a C library from Debian) to the
 * daemon's attack surface for a file of a dozen lines. docs/templates.md
 * documents the fields:
 *
 *   {"name": "python", "description": "...", "suite": "bookworm",
 *    "mirror": "http://deb.debian.org/debian", "packages": ["python3"],
 *    "files": [{"path": "/usr/local/lib/x.py", "content": "...", "mode": "0644"}],
 *    "env": {"K": "V"}, "warmup": "import json",
 *    "limits": {"memory_mb": 1024, "cpus": 1.0, "timeout_s": 300}}
 *
 * Unknown fields are refused (a typo must not be silently ignored), and
 * nothing in a spec is ever run on the host: no hooks, no shell, only
 * package names for apt and file contents the daemon writes itself.
 */
#ifndef AIRLOCK_TMPL_SPEC_H
#define AIRLOCK_TMPL_SPEC_H

#include <stddef.h>

#include <jansson.h>

#define TMPL_NAME_MAX 32
#define TMPL_HASH_LEN 71 /* "sha256:" + 64 hex */
#define TMPL_DEFAULT_MIRROR "http://deb.debian.org/debian"
/* Part of the spec hash: a builder that makes different trees from the same
 * spec must not reuse the old builder's cached trees. */
#define TMPL_BUILDER_VERSION "airlock-template-builder/2" /* 2: lz4hc erofs image */

struct tmpl_spec {
    json_t *canon; /* validated, every field present (defaults filled in) */
    char name[TMPL_NAME_MAX + 1];
    char hash[TMPL_HASH_LEN + 1]; /* sha256 of the canonical form + builder version */
};

/* Validate in and fill out. 0, or -EINVAL with err saying which field is
 * wrong and why. */
int tmpl_spec_parse(json_t *in, struct tmpl_spec *out, char *err, size_t errlen);
void tmpl_spec_clear(struct tmpl_spec *s);

/* A template name: [a-z0-9][a-z0-9_-]*, at most TMPL_NAME_MAX. */
int tmpl_name_valid(const char *name);

#endif
