/*
 * The command line: version, config check/dump/docs and their exit codes.
 *
 * Runs the real daemon (argv[1]) through tests/integration/harness.h; every wait polls with a
 * deadline.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

static void test_cli(void **state)
{
    (void)state;
    char *out;
    const char *v[] = {g_bin, "version", NULL};
    assert_int_equal(run_cmd(v, NULL, &out), 0);
    assert_non_null(strstr(out, "agentaflow 0.1.0"));
    const char *help[] = {g_bin, "serve", "--help", NULL};
    assert_int_equal(run_cmd(help, NULL, &out), 0);
    assert_non_null(strstr(out, "--no-load-generator"));

    char good[512], bad[512];
    snprintf(good, sizeof(good), "%s/good.yaml", g_tmp);
    snprintf(bad, sizeof(bad), "%s/bad.yaml", g_tmp);
    write_file(good, "service_name: x\ntracing:\n  sampling_ratio: 0.5\n"
                     "server:\n  port: 9100\n  auth_token: hunter2hunter2\n");
    write_file(bad, "tracing:\n  sampling_ratio: high\nserver:\n  port: 70000\n");
    const char *c1[] = {g_bin, "config", "check", good, NULL};
    assert_int_equal(run_cmd(c1, NULL, &out), 0);
    assert_non_null(strstr(out, "server.port = 9100"));
    assert_non_null(strstr(out, "[redacted]"));
    assert_null(strstr(out, "hunter2"));
    const char *c2[] = {g_bin, "config", "check", bad, NULL};
    assert_int_equal(run_cmd(c2, NULL, &out), 1);
    assert_non_null(strstr(out, "sampling_ratio"));
    assert_non_null(strstr(out, "server.port"));
    const char *s2[] = {g_bin, "serve", "--config", bad, "--port", "0", NULL};
    assert_int_equal(run_cmd(s2, NULL, &out), 2);

    /* Typos get a suggestion from the key table; flags are checked by it too. */
    write_file(bad, "server:\n  prot: 9100\n");
    assert_int_equal(run_cmd(c2, NULL, &out), 0);
    assert_non_null(strstr(out, "bad.yaml:2:3: server.prot: unknown key (ignored); did you mean "
                                "\"server.port\"?"));
    const char *s3[] = {g_bin, "serve", "--port", "65536", NULL};
    assert_int_equal(run_cmd(s3, NULL, &out), 2);
    assert_non_null(strstr(out, "--port: expected a port number 0-65535"));
    const char *docs[] = {g_bin, "config", "docs", NULL};
    assert_int_equal(run_cmd(docs, NULL, &out), 0);
    assert_non_null(strstr(out, "| `server.allowed_hosts` | list |"));
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_daemon_cli");
    if (rc)
        return rc;
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_cli),
    };
    rc = cmocka_run_group_tests_name("daemon_cli_own", own, NULL, NULL);
    harness_fini();
    return rc;
}
