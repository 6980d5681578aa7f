#include "path.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool path_utf8_valid(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

int path_normalize(const char *in, size_t len, char *out, const char **msg)
{
    if (!in) {
        *msg = "path must be a string";
        return -EINVAL;
    }
    if (memchr(in, '\0', len)) {
        *msg = "path contains a NUL byte";
        return -EINVAL;
    }
    if (len == 0) {
        *msg = "path is empty";
        return -EINVAL;
    }
    if (len > PATH_API_MAX) {
        *msg = "path is longer than 4096 bytes";
        return -EINVAL;
    }
    if (!path_utf8_valid(in, len)) {
        *msg = "path is not valid UTF-8";
        return -EINVAL;
    }
    char full[PATH_NORM_MAX + 2];
    snprintf(full, sizeof(full), "%s%.*s", in[0] == '/' ? "" : "/home/user/", (int)len, in);

    /* walk components, keeping a stack of where each one starts in out */
    size_t o = 0;
    size_t starts[PATH_NORM_MAX / 2 + 1];
    size_t depth = 0;
    const char *p = full;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchrnul(p, '/');
        size_t clen = (size_t)(e - p);
        if (clen == 0 || (clen == 1 && p[0] == '.')) {
            /* empty or "." */
        } else if (clen == 2 && p[0] == '.' && p[1] == '.') {
            if (depth > 0)
                o = starts[--depth];
        } else {
            starts[depth++] = o;
            out[o++] = '/';
            memcpy(out + o, p, clen);
            o += clen;
        }
        p = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

bool path_is_kernel(const char *norm)
{
    static const char *const roots[] = {"/proc", "/sys", "/dev"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(norm, roots[i], n) == 0 && (norm[n] == '\0' || norm[n] == '/'))
            return true;
    }
    return false;
}
