/* log.h - one line per event on stderr: "2026-11-26T22:23:58.123Z airlockd[pid] LEVEL message".
 * The daemon logs at the boundary where an error is decided, once, with context. */
#ifndef AIRLOCK_LOG_H
#define AIRLOCK_LOG_H
#include <stdbool.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_init(const char *progname, enum log_level min);
/* Also hand each formatted line (without timestamp or newline) to sink: the
 * agent's stderr is /dev/null inside a sandbox, so it forwards its log to the
 * daemon. Set once, before any thread exists. */
void log_set_sink(void (*sink)(void *ctx, enum log_level lvl, const char *line), void *ctx);
/* Would a message at lvl be written? (skip building costly debug lines) */
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
