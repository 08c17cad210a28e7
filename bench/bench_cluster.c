/*
 * bench_cluster: the cluster scheduler at fleet size (1,000 nodes x 8 GPUs).
 *
 *   cluster_report_ingest_rate      agent report bodies (8 GPUs, 2 processes each) parsed and
 *                                   applied per second, over the JSON path the route uses
 *   cluster_memory_per_node         heap bytes per node held by the inventory (mallinfo2)
 *   cluster_filter_prioritize_p50/p99
 *                                   one kube-scheduler cycle: filter + prioritize ExtenderArgs
 *                                   (1,000 nodenames, a 20 GiB share) in and results out, with
 *                                   each pod's hold kept (as in production, up to the TTL)
 *   cluster_filter_prioritize_cpu_p99
 *                                   the same cycle in thread CPU time (without preemption)
 *   cluster_gpus_list_p50/p99       the body of GET /api/v1/gpus in serve --cluster over the
 *                                   8,000 GPUs (af_cluster_gpus_json: the route only hands it
 *                                   over), and its size in cluster_gpus_list_bytes
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/cluster.h"

enum { NODES = 1000, GPUS = 8, CYCLES = 2000 };

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of this thread: on a shared machine wall-clock tails are mostly time spent
 * preempted, which this leaves out. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static char *report_body(int node, int round)
{
    af_gpu_process procs[2] = {{100, "python", 2048, 'C'}, {101, "tritonserver", 1024, 'C'}};
    af_cluster_gpu g[GPUS];
    memset(g, 0, sizeof(g));
    char name[32];
    snprintf(name, sizeof(name), "node-%04d", node);
    for (int i = 0; i < GPUS; i++) {
        g[i].index = (uint32_t)i;
        snprintf(g[i].name, sizeof(g[i].name), "NVIDIA A100-SXM4-80GB");
        g[i].memory_total_mb = 81920;
        g[i].memory_used_mb = (uint64_t)((node * 7 + i * 13 + round) % 80) * 1024;
        g[i].memory_free_mb = g[i].memory_total_mb - g[i].memory_used_mb;
        g[i].utilization = (node + i + round) % 100;
        g[i].temperature = 40 + i;
        g[i].power_draw = 250;
        g[i].procs = procs;
        g[i].n_procs = 2;
    }
    af_cluster_report r = {name, g, GPUS};
    char *body = NULL;
    if (af_cluster_report_body(&r, &body) != 0)
        exit(1);
    return body;
}

/* GET /api/v1/gpus over the fleet: latency and bytes of the body. */
static void bench_gpus_list(af_cluster *c)
{
    enum { LISTS = 200 };
    uint64_t *lat = malloc(LISTS * sizeof(*lat));
    size_t bytes = 0;
    for (int k = 0; k < LISTS; k++) {
        char *out = NULL;
        uint64_t s = mono_ns();
        if (af_cluster_gpus_json(c, &out) != 0)
            exit(1);
        lat[k] = mono_ns() - s;
        bytes = strlen(out);
        free(out);
    }
    qsort(lat, LISTS, sizeof(*lat), cmp_u64);
    printf("cluster_gpus_list_p50 %.3f ms\n", (double)lat[LISTS / 2] / 1e6);
    printf("cluster_gpus_list_p99 %.3f ms\n", (double)lat[LISTS * 99 / 100] / 1e6);
    printf("cluster_gpus_list_bytes %zu bytes\n", bytes);
    free(lat);
}

int main(void)
{
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.strategy = AF_GPU_BEST_FIT;
    af_cluster *c = NULL;
    if (af_cluster_new(&o, &c) != 0)
        return 1;

    char **bodies = malloc(NODES * sizeof(*bodies));
    for (int i = 0; i < NODES; i++)
        bodies[i] = report_body(i, 0);
    struct mallinfo2 m0 = mallinfo2();
    char err[256];
    for (int i = 0; i < NODES; i++)
        if (af_cluster_report_json(c, bodies[i], strlen(bodies[i]), err, sizeof(err)) != 0) {
            fprintf(stderr, "report: %s\n", err);
            return 1;
        }
    struct mallinfo2 m1 = mallinfo2();
    printf("cluster_memory_per_node %.0f bytes\n",
           (double)(m1.uordblks - m0.uordblks) / (double)NODES);

    /* Steady state: every node reports again, many times. */
    enum { ROUNDS = 10 };
    uint64_t t0 = mono_ns();
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < NODES; i++)
            af_cluster_report_json(c, bodies[i], strlen(bodies[i]), err, sizeof(err));
    double secs = (double)(mono_ns() - t0) / 1e9;
    printf("cluster_report_ingest_rate %.0f reports/s\n", ROUNDS * NODES / secs);
    printf("cluster_report_ingest_gpu_rate %.0f gpus/s\n", ROUNDS * NODES * GPUS / secs);
    for (int i = 0; i < NODES; i++)
        free(bodies[i]);
    free(bodies);
    bench_gpus_list(c);

    /* ExtenderArgs with 1,000 nodenames, a distinct pod per cycle. */
    size_t cap = 64 + NODES * 16 + 1024;
    char *names = malloc(cap);
    size_t used = 0;
    for (int i = 0; i < NODES; i++)
        used += (size_t)snprintf(names + used, cap - used, "%s\"node-%04d\"", i ? "," : "", i);
    char *args = malloc(cap + 1024);
    uint64_t *lat = malloc(CYCLES * sizeof(*lat)), *cpu = malloc(CYCLES * sizeof(*cpu));
    for (int k = 0; k < CYCLES; k++) {
        snprintf(args, cap + 1024,
                 "{\"pod\":{\"metadata\":{\"name\":\"p%d\",\"namespace\":\"ml\",\"uid\":\"u%d\","
                 "\"annotations\":{\"agentaflow.io/gpu-memory-mb\":\"20480\"}},"
                 "\"spec\":{\"containers\":[{\"name\":\"m\"}]}},\"nodenames\":[%s]}",
                 k, k, names);
        size_t n = strlen(args);
        char *out1 = NULL, *out2 = NULL;
        uint64_t s = mono_ns(), sc = cpu_ns();
        int rc = af_cluster_filter_json(c, args, n, &out1, err, sizeof(err));
        if (rc == 0)
            rc = af_cluster_prioritize_json(c, args, n, &out2, NULL, err, sizeof(err));
        lat[k] = mono_ns() - s;
        cpu[k] = cpu_ns() - sc;
        if (rc != 0) {
            fprintf(stderr, "extender: %s\n", err);
            return 1;
        }
        free(out1);
        free(out2);
    }
    qsort(lat, CYCLES, sizeof(*lat), cmp_u64);
    printf("cluster_filter_prioritize_p50 %.3f ms\n", (double)lat[CYCLES / 2] / 1e6);
    printf("cluster_filter_prioritize_p99 %.3f ms\n", (double)lat[CYCLES * 99 / 100] / 1e6);
    qsort(cpu, CYCLES, sizeof(*cpu), cmp_u64);
    printf("cluster_filter_prioritize_cpu_p99 %.3f ms\n", (double)cpu[CYCLES * 99 / 100] / 1e6);
    free(lat);
    free(cpu);
    free(args);
    free(names);
    af_cluster_free(c);
    return 0;
}
