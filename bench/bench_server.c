/*
 * bench_server: the daemon under load, measured from outside with wrk (Debian package wrk).
 *
 *   server_gpus_rps / _p99_ms         GET /api/v1/gpus, wrk -t2 -c64, tracing on
 *   server_health_rps / _p99_ms       GET /health
 *   server_metrics_rps / _p99_ms      GET /metrics (Prometheus port)
 *   server_inference_rps / _p99_ms    POST /api/v1/inference (simulated backend, every prompt
 *                                     distinct so the cache never answers)
 *   server_*_tls_rps / _tls_p99_ms    the same four over TLS (server.tls.*, a self-signed
 *                                     P-256 certificate made by the openssl command), wrk
 *                                     keeping its connections alive as in the plain runs
 *   server_gpus_tls_cost_us           per-request cost of TLS on GET /api/v1/gpus
 *   server_gpus_rps_tracing_off       the same GET with tracing.enabled: false
 *   server_tracing_overhead_us        per-request cost of tracing (1/rps_on - 1/rps_off)
 *   server_ws_fanout_1000_cpu_pct     daemon CPU with 1000 WebSocket clients, 200 ms pushes
 *   server_ws_fanout_1000_msgs_per_s  messages the 1000 clients received per second
 *
 * Prints `name value unit` lines. Without wrk it says so and exits 0. The daemon binary is
 * the agentaflow next to this program. BENCH_SECONDS (default 5) sets each wrk run's length.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

/* The API, Prometheus and inference runs against a daemon started with config, over
 * scheme ("http" or "https"); names get suffix ("" or "_tls"). Returns the GET
 * /api/v1/gpus rate (0 when it failed). */
static double api_runs(const char *config, const char *scheme, const char *suffix,
                       const char *script)
{
    static const struct {
        const char *name, *path;
        bool metrics;
        int conns;
        bool post;
    } runs[] = {
        {"server_gpus", "/api/v1/gpus", false, 64, false},
        {"server_health", "/health", false, 64, false},
        {"server_metrics", "/metrics", true, 64, false},
        {"server_inference", "/api/v1/inference", false, 16, true},
    };
    int port, mport;
    pid_t pid = bench_daemon_start(config, ":memory:", true, &port, &mport, NULL);
    if (pid < 0) {
        printf("# bench_server: the daemon did not start (%s)\n", scheme);
        return 0;
    }
    double rps, p99, gpus_rps = 0;
    char url[256];
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", scheme, runs[i].metrics ? mport : port,
                 runs[i].path);
        if (bench_wrk(url, 2, runs[i].conns, runs[i].post ? script : NULL, &rps, &p99, NULL) != 0) {
            printf("# %s%s: wrk failed\n", runs[i].name, suffix);
            continue;
        }
        if (i == 0)
            gpus_rps = rps;
        printf("%s%s_rps %.0f req/s\n%s%s_p99_ms %.3f ms\n", runs[i].name, suffix, rps,
               runs[i].name, suffix, p99);
        fflush(stdout);
    }
    bench_daemon_stop(pid);
    return gpus_rps;
}

/* A self-signed certificate for 127.0.0.1 in bench_tmp(); false without the openssl command. */
static bool make_cert(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout key.pem -out cert.pem -days 1 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             bench_tmp());
    return system(cmd) == 0;
}

static int ws_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void ws_fanout(void)
{
    int port, mport;
    pid_t pid = bench_daemon_start("server:\n  ws_push_interval: 200ms\n  max_ws_clients: 2000\n",
                                   ":memory:", true, &port, &mport, NULL);
    if (pid < 0)
        return;
    enum { N = 1000 };
    static int fds[N];
    int ok = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = ws_client(port);
        ok += fds[i] >= 0;
    }
    /* Drain for a second so handshakes settle, then measure. */
    static char buf[65536];
    double t_end = bench_now_s() + 1.0;
    while (bench_now_s() < t_end)
        for (int i = 0; i < N; i++)
            if (fds[i] >= 0)
                while (read(fds[i], buf, sizeof(buf)) > 0)
                    ;
    double c0 = cpu_seconds(pid), t0 = bench_now_s();
    unsigned long long bytes = 0, frames_est = 0;
    struct pollfd *pf = calloc(N, sizeof(*pf));
    double stop = t0 + bench_seconds();
    while (pf && bench_now_s() < stop) {
        for (int i = 0; i < N; i++) {
            pf[i].fd = fds[i];
            pf[i].events = POLLIN;
        }
        if (poll(pf, N, 100) <= 0)
            continue;
        for (int i = 0; i < N; i++)
            if (pf[i].revents & POLLIN) {
                ssize_t k;
                while ((k = read(fds[i], buf, sizeof(buf))) > 0) {
                    bytes += (unsigned long long)k;
                    /* Messages counted by their type key (one split across two reads
                     * is missed: an estimate). */
                    for (char *q = buf;
                         (q = memmem(q, (size_t)(buf + k - q), "\"type\":\"metrics_update\"", 23));
                         q += 23)
                        frames_est++;
                }
            }
    }
    double dt = bench_now_s() - t0, cpu = cpu_seconds(pid) - c0;
    printf("server_ws_fanout_clients %d clients\n", ok);
    printf("server_ws_fanout_1000_cpu_pct %.1f %%\n", dt > 0 ? cpu / dt * 100.0 : 0);
    printf("server_ws_fanout_1000_mb_per_s %.2f MB/s\n", dt > 0 ? (double)bytes / dt / 1e6 : 0);
    printf("server_ws_fanout_1000_msgs_per_s %.0f msg/s\n", dt > 0 ? (double)frames_est / dt : 0);
    free(pf);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    bench_daemon_stop(pid);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        printf("# bench_server: wrk is not installed (Debian package wrk); skipped\n");
        return 0;
    }
    int rc = bench_setup("bench_server", "/tmp/af-bench-XXXXXX");
    if (rc != 0)
        return rc < 0 ? 1 : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char script[128];
    snprintf(script, sizeof(script), "%s/infer.lua", bench_tmp());
    FILE *f = fopen(script, "w");
    if (!f)
        return 1;
    fputs("local n = 0\n"
          "request = function()\n"
          "  n = n + 1\n"
          "  return wrk.format('POST', '/api/v1/inference', {['Content-Type'] = "
          "'application/json'}, '{\"model_id\":\"model-gpt\",\"input\":\"bench ' .. "
          "tostring(n) .. ' ' .. tostring(math.random(1e9)) .. '\"}')\n"
          "end\n",
          f);
    fclose(f);

    int port, mport;
    double rps, p99, rps_off = 0;
    char url[256];
    double rps_on = api_runs("service_name: agentaflow-bench\n", "http", "", script);
    if (make_cert()) {
        char cfg[512];
        snprintf(cfg, sizeof(cfg),
                 "service_name: agentaflow-bench\nserver:\n  tls:\n    cert_file: %s/cert.pem\n"
                 "    key_file: %s/key.pem\n",
                 bench_tmp(), bench_tmp());
        double rps_tls = api_runs(cfg, "https", "_tls", script);
        if (rps_on > 0 && rps_tls > 0)
            printf("server_gpus_tls_cost_us %.2f us/request\n",
                   (1.0 / rps_tls - 1.0 / rps_on) * 1e6);
    } else {
        printf("# bench_server: the openssl command is missing (Debian package openssl); "
               "no TLS figures\n");
    }
    fflush(stdout);

    pid_t pid =
        bench_daemon_start("tracing:\n  enabled: false\n", ":memory:", true, &port, &mport, NULL);
    if (pid >= 0) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/gpus", port);
        if (bench_wrk(url, 2, 64, NULL, &rps, &p99, NULL) == 0) {
            rps_off = rps;
            printf("server_gpus_rps_tracing_off %.0f req/s\nserver_gpus_p99_ms_tracing_off %.3f "
                   "ms\n",
                   rps, p99);
        }
        bench_daemon_stop(pid);
    }
    if (rps_on > 0 && rps_off > 0)
        printf("server_tracing_overhead_us %.2f us/request\n",
               (1.0 / rps_on - 1.0 / rps_off) * 1e6);
    fflush(stdout);
    ws_fanout();
    bench_cleanup();
    return 0;
}
