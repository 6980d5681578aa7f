#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Set once at start-up before any thread exists, read-only afterwards. */
static const char *log_prog = "airlock";
static enum log_level log_min = LOG_LVL_INFO;
static void (*log_sink)(void *ctx, enum log_level lvl, const char *line);
static void *log_sink_ctx;

void log_set_sink(void (*sink)(void *ctx, enum log_level lvl, const char *line), void *ctx)
{
    log_sink = sink;
    log_sink_ctx = ctx;
}

void log_init(const char *progname, enum log_level min)
{
    log_prog = progname;
    log_min = min;
}

bool log_enabled(enum log_level lvl) { return lvl >= log_min; }

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (lvl < log_min)
        return;
    if (log_sink) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_sink(log_sink_ctx, lvl, msg);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_prog,
                     (int)getpid(), names[lvl]);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    /* one write() so lines from several threads do not interleave */
    (void)!write(STDERR_FILENO, line, len);
}
