/* config.h - airlockd's command line. Parsed once in main(), read-only after. */
#ifndef AIRLOCK_CONFIG_H
#define AIRLOCK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct config {
    char listen_host[256];
    uint16_t listen_port;
    char *socket_path;   /* NULL: no unix socket */
    char *state_dir;
    char *region;
    unsigned max_sandboxes;
    unsigned max_timeout_s;
    unsigned default_timeout_s;
    unsigned max_memory_mb;
    uint64_t max_upload_bytes;
    char *agent_path;
    char *runner_path;
    char *scope;         /* NULL: derived from state_dir (main.c) */
    enum log_level log_level;
};

/* 0 on success, 1 if --help was printed (exit 0), -EINVAL after printing the
 * problem to stderr (exit 2). */
int config_parse(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);

#endif
