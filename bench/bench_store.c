/*
 * bench_store: what durability costs (docs/durability.md).
 *
 *   store_cost_post_durable_rps / _p99_ms   POST /api/v1/costs, wrk -t2 -c64, data directory,
 *                                           server.fsync: full (synchronous=FULL)
 *   store_cost_post_normal_rps / _p99_ms    the same with server.fsync: normal
 *   store_cost_post_memory_rps / _p99_ms    the same with --data-dir :memory: (nothing saved)
 *   store_cost_write_1m_s                   writing 1,000,000 ledger entries (+ roll-ups)
 *                                           straight through the SQLite backend, 10,000 a
 *                                           transaction
 *   store_bytes_per_million_costs           database bytes on disk for them
 *   store_restart_1m_costs_100k_workloads_s start of the daemon on that database plus 100,000
 *                                           workloads (90 % finished) until it serves HTTP
 *
 * Prints `name value unit` lines, no assertions. The daemon is the agentaflow next to this
 * program; the POST runs need wrk (Debian package wrk) and are skipped without it.
 * BENCH_SECONDS (default 5) sets each wrk run's length.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentaflow/store.h"
#include "daemon.h"

static void post_runs(void)
{
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        printf("# bench_store: wrk is not installed (Debian package wrk); POST runs skipped\n");
        return;
    }
    char script[128];
    snprintf(script, sizeof(script), "%s/cost.lua", bench_tmp());
    FILE *f = fopen(script, "w");
    if (!f)
        return;
    fputs("request = function()\n"
          "  return wrk.format('POST', '/api/v1/costs', {['Content-Type'] = "
          "'application/json'}, '{\"operation\":\"inference\",\"model_id\":\"bench\","
          "\"cost\":0.001,\"tokens_used\":12,\"gpu_hours\":0.0001}')\n"
          "end\n",
          f);
    fclose(f);
    static const struct {
        const char *name, *config;
        bool memory;
    } runs[] = {
        {"store_cost_post_durable", "service_name: bench\nserver:\n  fsync: full\n", false},
        {"store_cost_post_normal", "service_name: bench\nserver:\n  fsync: normal\n", false},
        {"store_cost_post_memory", "service_name: bench\n", true},
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/post%zu", bench_tmp(), i);
        int port;
        pid_t pid = bench_daemon_start(runs[i].config, runs[i].memory ? ":memory:" : dir, false,
                                       &port, NULL, NULL);
        if (pid < 0) {
            printf("# %s: the daemon did not start\n", runs[i].name);
            continue;
        }
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/costs", port);
        double rps, p99;
        bool non2xx;
        int rc = bench_wrk(url, 2, 64, script, &rps, &p99, &non2xx);
        if (non2xx)
            printf("# wrk saw non-2xx answers\n");
        if (rc == 0)
            printf("%s_rps %.0f req/s\n%s_p99_ms %.3f ms\n", runs[i].name, rps, runs[i].name, p99);
        else
            printf("# %s: wrk failed\n", runs[i].name);
        fflush(stdout);
        bench_daemon_stop(pid);
    }
}

static uint64_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* 1M ledger entries over the last 30 days and 100k workloads, through the backend. */
static void restart_run(void)
{
    char dir[128], db[192], wal[200];
    snprintf(dir, sizeof(dir), "%s/big", bench_tmp());
    mkdir(dir, 0700);
    snprintf(db, sizeof(db), "%s/" AF_STORE_DB_FILE, dir);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = db;
    const af_store_backend_ops *ops;
    void *self;
    char err[512];
    if (af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)) != 0) {
        printf("# bench_store: %s\n", err);
        return;
    }
    static const char *const ops_names[] = {"inference", "training", "gpu_compute", "embedding"};
    static const char *const models[] = {"model-gpt", "model-bert", "gpu_a100", "gpu_t4"};
    uint64_t now = (uint64_t)time(NULL) * 1000000000ull, span = 30ull * 86400ull * 1000000000ull;
    enum { N = 1000000, BATCH = 10000 };
    double t0 = bench_now_s();
    int rc = 0;
    for (int i = 0; i < N && rc == 0; i += BATCH) {
        rc = ops->begin(self, err, sizeof(err));
        for (int k = i; k < i + BATCH && rc == 0; k++) {
            char id[32];
            snprintf(id, sizeof(id), "cost-%d", k + 1);
            af_store_op op = {.kind = AF_STORE_COST};
            op.u.cost = (af_store_cost){id,
                                        ops_names[k % 4],
                                        models[k % 4],
                                        "USD",
                                        1000000ull * (uint64_t)(k % 977),
                                        k % 500,
                                        0.0001 * (k % 13),
                                        0.001 * (k % 101),
                                        now - span + span / N * (uint64_t)k};
            rc = ops->write(self, &op, err, sizeof(err));
        }
        if (rc == 0)
            rc = ops->commit(self, err, sizeof(err));
    }
    double write_s = bench_now_s() - t0;
    ops->close(self); /* checkpoints the WAL into the database */
    if (rc != 0) {
        printf("# bench_store: %s\n", err);
        return;
    }
    printf("store_cost_write_1m_s %.2f s\n", write_s);
    printf("store_bytes_per_million_costs %llu bytes\n",
           (unsigned long long)(file_size(db) + file_size(wal)));
    fflush(stdout);

    if (af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)) != 0) {
        printf("# bench_store: %s\n", err);
        return;
    }
    rc = ops->begin(self, err, sizeof(err));
    for (int k = 0; k < 100000 && rc == 0; k++) {
        char id[32];
        snprintf(id, sizeof(id), "wl-%d", k);
        bool done = k < 90000;
        af_store_op op = {.kind = AF_STORE_WORKLOAD_NEW};
        op.u.workload = (af_store_workload){.id = id,
                                            .name = "bench",
                                            .priority = k % 7,
                                            .memory_mb = 1024,
                                            .status = done ? 2 : 0,
                                            .pending_reason = done ? 0 : 1,
                                            .assigned_gpu = done ? "gpu-0" : "",
                                            .failure = "",
                                            .submitted_ns = now - 1000000000ull,
                                            .started_ns = done ? now - 900000000ull : 0,
                                            .completed_ns = done ? now - 100000000ull : 0};
        rc = ops->write(self, &op, err, sizeof(err));
    }
    if (rc == 0)
        rc = ops->commit(self, err, sizeof(err));
    ops->close(self);
    if (rc != 0) {
        printf("# bench_store: %s\n", err);
        return;
    }
    int port;
    double ready = 0;
    pid_t pid = bench_daemon_start("service_name: bench\n", dir, false, &port, NULL, &ready);
    if (pid < 0) {
        printf("# bench_store: the daemon did not start on the big database\n");
        return;
    }
    printf("store_restart_1m_costs_100k_workloads_s %.3f s\n", ready);
    bench_daemon_stop(pid);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int rc = bench_setup("bench_store", "/tmp/af-bench-store-XXXXXX");
    if (rc != 0)
        return rc < 0 ? 1 : 0;
    post_runs();
    restart_run();
    return bench_cleanup() == 0 ? 0 : 1;
}
