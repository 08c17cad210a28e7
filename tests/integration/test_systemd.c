/*
 * The daemon under systemd's notify protocol, for real: the test plays the service manager
 * with a unix datagram socket in NOTIFY_SOCKET and reads what `agentaflow serve` sends.
 * READY=1 must come only once the listeners answer (the daemon has no --port-file here, so
 * the STATUS= line sent with READY=1 is the only way to learn the port), WATCHDOG=1 must
 * repeat while WATCHDOG_USEC is set for this process and never when WATCHDOG_PID names
 * another one, SIGHUP is RELOADING=1 then READY=1, and SIGTERM is STOPPING=1 with a
 * "draining" status, then "stopped". Also: $CONFIGURATION_DIRECTORY/agentaflow.yaml is the
 * default configuration file.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static int g_sock = -1;
static char g_sock_path[300];

/* Starts `agentaflow serve` on ephemeral ports with NOTIFY_SOCKET set and `env` added. */
static pid_t spawn_serve(const char *const *env)
{
    char log[512], notify[400];
    snprintf(log, sizeof(log), "%s/daemon.log", g_tmp);
    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", g_sock_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        /* What systemd would not pass down from the test's own environment. */
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("CONFIGURATION_DIRECTORY");
        /* Persistence is beside the point here: no data directory left behind. */
        setenv("AGENTAFLOW_DATA_DIR", ":memory:", 0);
        putenv(notify);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execl(g_bin, g_bin, "serve", "--port", "0", "--metrics-port", "0", "--gpu-backend",
              "simulated", "--no-load-generator", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Receives datagrams until one has the line `want` (copied into msg) or timeout_ms passes;
 * counts the WATCHDOG=1 datagrams seen meanwhile into *pings (may be NULL). */
static bool expect_line(const char *want, char *msg, size_t cap, int timeout_ms, int *pings)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    size_t wl = strlen(want);
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return false;
        struct pollfd pfd = {.fd = g_sock, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            continue;
        ssize_t n = recv(g_sock, msg, cap - 1, 0);
        assert_true(n >= 0);
        msg[n] = '\0';
        for (const char *l = msg; *l; l += strcspn(l, "\n"), l += *l == '\n') {
            if (pings && strncmp(l, "WATCHDOG=1", 10) == 0 && (l[10] == '\n' || !l[10]))
                (*pings)++;
            if (strncmp(l, want, wl) == 0 && (l[wl] == '\n' || !l[wl]))
                return true;
        }
    }
}

/* The STATUS= value of a datagram, or "" */
static const char *status_of(const char *msg, char *out, size_t cap)
{
    const char *s = strstr(msg, "STATUS=");
    out[0] = '\0';
    if (s)
        snprintf(out, cap, "%.*s", (int)strcspn(s + 7, "\n"), s + 7);
    return out;
}

static int wait_exit(pid_t pid)
{
    uint64_t deadline = now_ms() + 15000;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        pause_ms(20);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Waits for READY=1 and returns the port its STATUS= line names; the API must answer at once. */
static int expect_ready(pid_t pid)
{
    char msg[1024], status[512];
    if (!expect_line("READY=1", msg, sizeof(msg), 20000, NULL)) {
        kill(pid, SIGKILL);
        fail_msg("no READY=1 from the daemon (see %s/daemon.log)", g_tmp);
    }
    int port = 0;
    status_of(msg, status, sizeof(status));
    if (sscanf(status, "serving on http://127.0.0.1:%d", &port) != 1 || port <= 0)
        fail_msg("READY=1 without the port in its status: '%s'", status);
    resp r = http(port, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    return port;
}

static void expect_stop(pid_t pid)
{
    char msg[1024], status[512];
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_true(expect_line("STOPPING=1", msg, sizeof(msg), 15000, NULL));
    status_of(msg, status, sizeof(status));
    assert_int_equal(strncmp(status, "draining ", 9), 0);
    assert_true(expect_line("STATUS=stopped", msg, sizeof(msg), 15000, NULL));
    assert_int_equal(wait_exit(pid), 0);
}

static void test_ready_watchdog_reload_stop(void **state)
{
    (void)state;
    /* WATCHDOG_PID unset: the watchdog is for whoever reads the variables. */
    const char *env[] = {"WATCHDOG_USEC=2000000", NULL};
    pid_t pid = spawn_serve(env);
    expect_ready(pid);

    /* Pinged every half interval (1 s): two pings within a generous bound. */
    char msg[1024];
    int pings = 0;
    uint64_t deadline = now_ms() + 10000;
    while (pings < 2 && now_ms() < deadline)
        expect_line("WATCHDOG=1", msg, sizeof(msg), (int)(deadline - now_ms()), &pings);
    assert_true(pings >= 2);

    assert_int_equal(kill(pid, SIGHUP), 0);
    assert_true(expect_line("RELOADING=1", msg, sizeof(msg), 10000, NULL));
    assert_non_null(strstr(msg, "STATUS=reloading"));
    assert_non_null(strstr(msg, "MONOTONIC_USEC="));
    assert_true(expect_line("READY=1", msg, sizeof(msg), 10000, NULL));
    assert_non_null(strstr(msg, "STATUS=serving on http://127.0.0.1:"));

    expect_stop(pid);
}

static void test_watchdog_of_another_process(void **state)
{
    (void)state;
    /* sd_watchdog_enabled(3): WATCHDOG_PID naming another process (pid 1 here) means the
     * watchdog is not ours, so the daemon must not ping even with a short interval. */
    const char *env[] = {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1", NULL};
    pid_t pid = spawn_serve(env);
    expect_ready(pid);
    char msg[1024];
    int pings = 0;
    /* Ten would-be intervals of silence; a ping ends the wait early and fails. */
    assert_false(expect_line("WATCHDOG=1", msg, sizeof(msg), 1000, &pings));
    assert_int_equal(pings, 0);
    expect_stop(pid);
}

static void test_configuration_directory(void **state)
{
    (void)state;
    char dir[400], path[512], env_dir[512];
    snprintf(dir, sizeof(dir), "%s/etc", g_tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/agentaflow.yaml", dir);
    write_file(path, "service_name: from-configuration-directory\n");
    /* systemd joins several ConfigurationDirectory= entries with ':'; the first is ours. */
    snprintf(env_dir, sizeof(env_dir), "CONFIGURATION_DIRECTORY=%s:/nonexistent", dir);
    const char *env[] = {env_dir, NULL};
    pid_t pid = spawn_serve(env);
    int port = expect_ready(pid);
    json_t *cfg = get_json(port, "/api/v1/config", 200);
    assert_string_equal(json_string_value(json_object_get(cfg, "service_name")),
                        "from-configuration-directory");
    json_decref(cfg);
    expect_stop(pid);
}

static int setup(void **state)
{
    (void)state;
    g_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(g_sock >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(g_sock_path, sizeof(g_sock_path), "%s/notify", g_tmp);
    assert_true(strlen(g_sock_path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, g_sock_path, strlen(g_sock_path) + 1);
    assert_int_equal(bind(g_sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(g_sock);
    unlink(g_sock_path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_systemd /path/to/agentaflow\n");
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-sd-it-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_watchdog_reload_stop),
        cmocka_unit_test(test_watchdog_of_another_process),
        cmocka_unit_test(test_configuration_directory),
    };
    int rc = cmocka_run_group_tests_name("systemd", tests, setup, teardown);
    curl_global_cleanup();
    /* The daemon's log stays for a failure to be read; otherwise nothing is left behind. */
    if (rc == 0) {
        const char *files[] = {"daemon.log", "etc/agentaflow.yaml", "etc", ""};
        char path[512];
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", g_tmp, files[i]);
            remove(path);
        }
    }
    return rc;
}
