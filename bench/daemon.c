/*
 * The daemon benchmarks' shared helpers (daemon.h).
 */
#include "daemon.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_bin[PATH_MAX], g_tmp[64];
static int g_secs = 5;

int bench_setup(const char *name, const char *tmp_template)
{
    const char *s = getenv("BENCH_SECONDS");
    if (s && atoi(s) > 0)
        g_secs = atoi(s);
    ssize_t n = readlink("/proc/self/exe", g_bin, sizeof(g_bin) - 16);
    if (n <= 0)
        return -1;
    g_bin[n] = '\0';
    char *slash = strrchr(g_bin, '/');
    snprintf(slash + 1, sizeof(g_bin) - (size_t)(slash + 1 - g_bin), "agentaflow");
    if (access(g_bin, X_OK) != 0) {
        printf("# %s: %s not built; skipped\n", name, g_bin);
        return 1;
    }
    snprintf(g_tmp, sizeof(g_tmp), "%s", tmp_template);
    return mkdtemp(g_tmp) ? 0 : -1;
}

int bench_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

const char *bench_tmp(void)
{
    return g_tmp;
}

int bench_seconds(void)
{
    return g_secs;
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t bench_daemon_start(const char *config, const char *data_dir, bool metrics, int *port,
                         int *mport, double *ready_s)
{
    static int seq;
    char cfg[128], pf[128];
    snprintf(cfg, sizeof(cfg), "%s/cfg%d.yaml", g_tmp, ++seq);
    snprintf(pf, sizeof(pf), "%s/ports%d", g_tmp, seq);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fputs(config, f);
    fclose(f);
    double t0 = bench_now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(g_bin, g_bin, "serve", "--config", cfg, "--port", "0", "--metrics-port",
              metrics ? "0" : "-1", "--port-file", pf, "--gpu-backend", "simulated",
              "--no-load-generator", "--data-dir", data_dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 60000; i++) {
        f = fopen(pf, "r");
        if (f) {
            int m, ok = fscanf(f, "%d %d", port, &m);
            fclose(f);
            if (ok == 2) {
                if (mport)
                    *mport = m;
                if (ready_s)
                    *ready_s = bench_now_s() - t0;
                return pid;
            }
        }
        poll(NULL, 0, 1);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

void bench_daemon_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* wrk's "850.00us" / "1.23ms" / "2.00s" / "1.00m" -> milliseconds. */
static double to_ms(const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (!strncmp(end, "us", 2))
        return x / 1000.0;
    if (!strncmp(end, "ms", 2))
        return x;
    if (*end == 's')
        return x * 1000.0;
    if (*end == 'm')
        return x * 60000.0;
    return x;
}

int bench_wrk(const char *url, int threads, int conns, const char *script, double *rps,
              double *p99_ms, bool *non2xx)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "wrk -t%d -c%d -d%ds --latency %s%s '%s' 2>&1", threads, conns,
             g_secs, script ? "-s " : "", script ? script : "", url);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    *rps = *p99_ms = 0;
    if (non2xx)
        *non2xx = false;
    while (fgets(line, sizeof(line), p)) {
        char v[64];
        if (sscanf(line, " Requests/sec: %lf", rps) == 1)
            continue;
        if (sscanf(line, " 99%% %63s", v) == 1)
            *p99_ms = to_ms(v);
        if (non2xx && strstr(line, "Non-2xx"))
            *non2xx = true;
    }
    return pclose(p) == 0 && *rps > 0 ? 0 : -1;
}
