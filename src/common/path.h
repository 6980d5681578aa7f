/* path.h - the lexical part of the file API's path policy, shared by the
 * daemon (which refuses a bad path before anything reaches the agent) and
 * the agent (which refuses it again, and then checks where the path really
 * leads: src/agent/pathpolicy.c).
 *
 * A path is refused if it is empty, longer than PATH_API_MAX bytes, contains
 * a NUL or is not valid UTF-8 (a NUL would cut it to another file's name
 * in every C string it passes through; an overlong encoding could spell '/'
 * or '.' without being one). It is then made absolute (relative paths start
 * at /home/user) and normalised lexically: "//" and "." collapse, ".." drops
 * the previous component and stops at "/". */
#ifndef AIRLOCK_PATH_H
#define AIRLOCK_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define PATH_API_MAX 4096
#define PATH_NORM_MAX (PATH_API_MAX + 16) /* + "/home/user/" */

/* in[0..len) -> out (PATH_NORM_MAX bytes). 0, or -EINVAL with *msg set to
 * what is wrong (a static string). */
int path_normalize(const char *in, size_t len, char *out, const char **msg);

/* Is the normalised path under /proc, /sys or /dev? Those are kernel
 * interfaces, not files: the file API refuses them (issue 10). */
bool path_is_kernel(const char *norm);

/* Is s[0..len) well-formed UTF-8 (no overlongs, surrogates, or code points
 * above U+10FFFF)? */
bool path_utf8_valid(const char *s, size_t len);

#endif
