/* airlockd's flags: the limits' defaults, what each flag accepts, and that a
 * bad value is refused rather than silently clamped. */
#include <errno.h>

#include "config.h"
#include "unit.h"

static int parse(struct config *cfg, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return config_parse(cfg, argc, argv);
}

static void test_defaults(void)
{
    struct config cfg;
    char *argv[] = {"airlockd", NULL};
    CHECK(parse(&cfg, argv) == 0);
    CHECK(cfg.rate_limit == 100 && cfg.rate_burst == 1000);
    CHECK(cfg.max_concurrent == 32 && cfg.max_sandboxes_per_key == 20);
    CHECK(!cfg.admin_unlimited);
    CHECK(cfg.auth_fail_rate == 1 && cfg.auth_fail_burst == 20);
    CHECK(cfg.max_sandboxes == 64);
    CHECK(cfg.pool_size == 2 && cfg.pool_max == 8);
    /* the audit log is bounded unless told otherwise; damaged state is
     * refused unless told otherwise */
    CHECK(cfg.audit_max_rows == 1000000 && cfg.audit_max_age_s == 0);
    CHECK(!cfg.init_state && !cfg.check_integrity);
    config_free(&cfg);
}

static void test_state(void)
{
    struct config cfg;
    char *argv[] = {"airlockd", "--init-state", "--check-integrity", "--audit-max-rows", "0", "--audit-max-age",
                    "86400", NULL};
    CHECK(parse(&cfg, argv) == 0);
    CHECK(cfg.init_state && cfg.check_integrity && cfg.audit_max_rows == 0 && cfg.audit_max_age_s == 86400);
    config_free(&cfg);
}

/* --pool-max is a ceiling over --pool-size, and --pool-size 0 means no pool
 * whatever --pool-max says. */
static void test_pool(void)
{
    struct config cfg;
    char *set[] = {"airlockd", "--pool-size", "3", "--pool-max", "5", NULL};
    CHECK(parse(&cfg, set) == 0);
    CHECK(cfg.pool_size == 3 && cfg.pool_max == 5);
    config_free(&cfg);
    char *low[] = {"airlockd", "--pool-size", "6", "--pool-max", "2", NULL};
    CHECK(parse(&cfg, low) == 0);
    CHECK(cfg.pool_size == 6 && cfg.pool_max == 6);
    config_free(&cfg);
    char *off[] = {"airlockd", "--pool-size", "0", "--pool-max", "9", NULL};
    CHECK(parse(&cfg, off) == 0);
    CHECK(cfg.pool_size == 0 && cfg.pool_max == 0);
    config_free(&cfg);
}

static void test_limits(void)
{
    struct config cfg;
    char *argv[] = {"airlockd", "--rate-limit", "0.5", "--rate-burst", "7", "--max-concurrent-requests", "0",
                    "--max-sandboxes-per-key", "3", "--admin-unlimited", "--auth-fail-rate", "0.01",
                    "--auth-fail-burst", "2", NULL};
    CHECK(parse(&cfg, argv) == 0);
    CHECK(cfg.rate_limit == 0.5 && cfg.rate_burst == 7);
    CHECK(cfg.max_concurrent == 0 && cfg.max_sandboxes_per_key == 3);
    CHECK(cfg.admin_unlimited);
    CHECK(cfg.auth_fail_rate == 0.01 && cfg.auth_fail_burst == 2);
    config_free(&cfg);

    char *off[] = {"airlockd", "--rate-limit", "0", "--auth-fail-rate", "0", NULL};
    CHECK(parse(&cfg, off) == 0);
    CHECK(cfg.rate_limit == 0 && cfg.auth_fail_rate == 0);
    config_free(&cfg);
}

static void test_refused(void)
{
    static const char *const bad[][2] = {
        {"--rate-limit", "-1"},    {"--rate-limit", "abc"},      {"--rate-limit", "0.0001"},
        {"--rate-limit", "nan"},   {"--rate-limit", "inf"},      {"--rate-limit", "5x"},
        {"--rate-burst", "0"},     {"--rate-burst", "-3"},       {"--max-concurrent-requests", "1.5"},
        {"--max-sandboxes-per-key", "many"}, {"--auth-fail-burst", "0"}, {"--auth-fail-rate", ""},
        {"--pool-size", "-1"},     {"--pool-size", "1001"},      {"--pool-max", "x"},
        {"--audit-max-rows", "-1"}, {"--audit-max-rows", "lots"}, {"--audit-max-age", "1d"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config cfg;
        char *argv[] = {"airlockd", (char *)bad[i][0], (char *)bad[i][1], NULL};
        int r = parse(&cfg, argv);
        if (r != -EINVAL)
            fprintf(stderr, "%s %s: %d\n", bad[i][0], bad[i][1], r);
        CHECK(r == -EINVAL);
        config_free(&cfg);
    }
}

int main(void)
{
    test_defaults();
    test_limits();
    test_pool();
    test_state();
    test_refused();
    UNIT_DONE();
}
