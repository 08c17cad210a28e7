/*
 * src/cluster: whole-GPU fit reads the agents' reports. A GPU whose latest report shows a
 * process, or more memory used than whole_gpu_busy_memory_mb, is busy for whole-GPU pods
 * (filter, prioritize, bind's re-choice) unless the asking pod holds it itself; shares keep
 * their rule (reported free memory less what agentaflow holds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cluster.h"
#include "testutil.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *user)
{
    (void)user;
    return fake_now;
}

#define SEC 1000000000ull

/* threshold: whole_gpu_busy_memory_mb; reported: whole_gpu_reported_use. */
static af_cluster *new_cluster_with(uint64_t threshold, bool reported)
{
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.strategy = AF_GPU_LEAST_UTILIZED;
    o.clock = fake_clock;
    o.reservation_ttl_ms = 30000;
    o.whole_gpu_busy_memory_mb = threshold;
    o.whole_gpu_reported_use = reported;
    af_cluster *c = NULL;
    assert_int_equal(af_cluster_new(&o, &c), 0);
    return c;
}

/* A node with n GPUs of 81920 MiB: used[i] MiB used by procs[i] processes (each an equal
 * part of it) on GPU i. */
static void report(af_cluster *c, const char *node, size_t n, const uint64_t *used,
                   const uint32_t *procs)
{
    af_cluster_gpu g[16];
    af_gpu_process p[16][4];
    memset(g, 0, sizeof(g));
    memset(p, 0, sizeof(p));
    for (size_t i = 0; i < n; i++) {
        g[i].index = (uint32_t)i;
        snprintf(g[i].name, sizeof(g[i].name), "Sim H100");
        g[i].memory_total_mb = 81920;
        g[i].memory_used_mb = used[i];
        g[i].memory_free_mb = 81920 - used[i];
        g[i].n_procs = procs[i];
        g[i].procs = p[i];
        for (uint32_t k = 0; k < procs[i]; k++) {
            p[i][k].pid = 4000 + k;
            snprintf(p[i][k].process_name, sizeof(p[i][k].process_name), "python");
            p[i][k].memory_used_mb = used[i] / procs[i];
        }
    }
    af_cluster_report r = {node, g, n};
    char err[128] = "";
    assert_int_equal(af_cluster_report_nodes(c, &r, err, sizeof(err)), 0);
}

static af_cluster_pod whole_pod(const char *uid, uint32_t gpus)
{
    af_cluster_pod p = {"ml", uid, uid, gpus, 0, 0, NULL};
    return p;
}

static void test_free_below_threshold(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    /* What an idle GPU reports: the driver's own reservation, no process. */
    uint64_t used[1] = {512};
    uint32_t procs[1] = {0};
    report(c, "node-1", 1, used, procs);
    const char *names[] = {"node-1"};
    af_cluster_verdict v;
    af_cluster_pod p = whole_pod("p", 1);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 1);
    assert_true(v.fits);
    int64_t s;
    char gpu[AF_GPU_ID_MAX];
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "node-1/gpu-0");
    af_cluster_free(c);
}

static void test_busy_by_process(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    /* gpu-1 runs two processes; gpu-0 is free. */
    uint64_t used[2] = {0, 14336};
    uint32_t procs[2] = {0, 2};
    report(c, "node-3", 2, used, procs);
    const char *names[] = {"node-3"};
    af_cluster_verdict v;
    af_cluster_pod two = whole_pod("two", 2);
    assert_int_equal(af_cluster_filter(c, &two, names, 1, &v), 0);
    assert_false(v.unresolvable); /* the job on it may be a pod that can be preempted */
    assert_string_equal(v.reason, "insufficient GPUs: 1 free < 2 requested; gpu-1 busy (2 "
                                  "processes, 14,336 MiB used, not by agentaflow)");
    /* A one-GPU pod fits on, and is given, the free one. */
    af_cluster_pod one = whole_pod("one", 1);
    assert_int_equal(af_cluster_filter(c, &one, names, 1, &v), 1);
    int64_t s;
    char gpu[AF_GPU_ID_MAX];
    assert_int_equal(af_cluster_prioritize(c, &one, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "node-3/gpu-0");
    /* A small process without much memory is a process all the same. */
    uint64_t small[2] = {0, 100};
    uint32_t one_proc[2] = {0, 1};
    report(c, "node-3", 2, small, one_proc);
    af_cluster_pod other = whole_pod("other", 1);
    assert_int_equal(af_cluster_filter(c, &other, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 0 free < 1 requested; gpu-1 busy (1 "
                                  "process, 100 MiB used, not by agentaflow)");
    af_cluster_free(c);
}

static void test_busy_by_memory(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    /* An agent outside the host's PID namespace lists no process, but the memory shows. */
    uint64_t used[1] = {2048};
    uint32_t procs[1] = {0};
    report(c, "node-1", 1, used, procs);
    const char *names[] = {"node-1"};
    af_cluster_verdict v;
    af_cluster_pod p = whole_pod("p", 1);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 0 free < 1 requested; gpu-0 busy (no "
                                  "process listed, 2,048 MiB used, not by agentaflow)");
    int64_t s = 7;
    char gpu[AF_GPU_ID_MAX];
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_int_equal(s, 0);
    assert_string_equal(gpu, "");
    /* Bind's own choice says the same. */
    char err[AF_CLUSTER_REASON_MAX] = "";
    assert_int_equal(af_cluster_bind(c, &p, "node-1", gpu, sizeof(gpu), err, sizeof(err)), -EAGAIN);
    assert_non_null(strstr(err, "gpu-0 busy (no process listed, 2,048 MiB used"));
    /* A share still fits in the memory the report leaves free. */
    af_cluster_pod share = {"ml", "share", "share", 0, 40000, 0, NULL};
    assert_int_equal(af_cluster_filter(c, &share, names, 1, &v), 1);
    af_cluster_free(c);
}

/* The pod's own job must not block its own scheduling: a GPU it holds stays its own. */
static void test_own_pod_gpu(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    uint64_t idle[1] = {0};
    uint32_t none[1] = {0};
    report(c, "node-1", 1, idle, none);
    const char *names[] = {"node-1"};
    af_cluster_verdict v;
    int64_t s;
    char gpu[AF_GPU_ID_MAX], err[AF_CLUSTER_REASON_MAX] = "";
    af_cluster_pod p = whole_pod("train", 1);
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "node-1/gpu-0");
    /* Its job starts before kube-scheduler asks again. */
    uint64_t used[1] = {30000};
    uint32_t procs[1] = {1};
    report(c, "node-1", 1, used, procs);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 1);
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "node-1/gpu-0");
    assert_int_equal(af_cluster_bind(c, &p, "node-1", gpu, sizeof(gpu), err, sizeof(err)), 0);
    assert_string_equal(gpu, "node-1/gpu-0");
    /* Another pod cannot have it: agentaflow holds it, and the report shows it in use. */
    af_cluster_pod q = whole_pod("q", 1);
    assert_int_equal(af_cluster_filter(c, &q, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 0 free < 1 requested");
    af_cluster_free(c);
}

/* The known limit this rule removes: after the binding's TTL the long job still owns its GPU. */
static void test_after_ttl_the_report_counts(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    uint64_t idle[1] = {0};
    uint32_t none[1] = {0};
    report(c, "node-1", 1, idle, none);
    const char *names[] = {"node-1"};
    af_cluster_verdict v;
    int64_t s;
    char gpu[AF_GPU_ID_MAX], err[AF_CLUSTER_REASON_MAX] = "";
    af_cluster_pod a = whole_pod("a", 1), b = whole_pod("b", 1);
    assert_int_equal(af_cluster_prioritize(c, &a, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_int_equal(af_cluster_bind(c, &a, "node-1", gpu, sizeof(gpu), err, sizeof(err)), 0);
    fake_now += 31 * SEC; /* the binding's TTL is over */
    uint64_t used[1] = {70000};
    uint32_t procs[1] = {1};
    report(c, "node-1", 1, used, procs);
    assert_int_equal(af_cluster_filter(c, &b, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 0 free < 1 requested; gpu-0 busy (1 "
                                  "process, 70,000 MiB used, not by agentaflow)");
    /* The job ends: the GPU is offered again. */
    report(c, "node-1", 1, idle, none);
    assert_int_equal(af_cluster_filter(c, &b, names, 1, &v), 1);
    af_cluster_free(c);
}

static void test_threshold_zero_and_off(void **state)
{
    (void)state;
    fake_now = SEC;
    /* 0: memory alone never makes a GPU busy, a listed process does. */
    af_cluster *c = new_cluster_with(0, true);
    uint64_t used[2] = {20000, 20000};
    uint32_t procs[2] = {0, 1};
    report(c, "node-2", 2, used, procs);
    const char *names[] = {"node-2"};
    af_cluster_verdict v;
    af_cluster_pod p = whole_pod("p", 2);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 1 free < 2 requested; gpu-1 busy (1 "
                                  "process, 20,000 MiB used, not by agentaflow)");
    af_cluster_free(c);
    /* whole_gpu_reported_use off: only agentaflow's holds take a GPU. */
    c = new_cluster_with(512, false);
    report(c, "node-2", 2, used, procs);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 1);
    af_cluster_free(c);
}

/* Many busy GPUs: the reason names the first ones and counts the rest, within its size. */
static void test_many_busy_reason_is_bounded(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster_with(512, true);
    uint64_t used[8];
    uint32_t procs[8];
    for (int i = 0; i < 8; i++) {
        used[i] = 81920;
        procs[i] = 3;
    }
    report(c, "node-8", 8, used, procs);
    const char *names[] = {"node-8"};
    af_cluster_verdict v;
    af_cluster_pod p = whole_pod("p", 1);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 0);
    assert_true(strlen(v.reason) < sizeof(v.reason) - 1);
    assert_non_null(strstr(v.reason, "insufficient GPUs: 0 free < 1 requested; gpu-0 busy (3 "
                                     "processes, 81,920 MiB used, not by agentaflow)"));
    assert_non_null(strstr(v.reason, "more busy"));
    af_cluster_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_below_threshold),
        cmocka_unit_test(test_busy_by_process),
        cmocka_unit_test(test_busy_by_memory),
        cmocka_unit_test(test_own_pod_gpu),
        cmocka_unit_test(test_after_ttl_the_report_counts),
        cmocka_unit_test(test_threshold_zero_and_off),
        cmocka_unit_test(test_many_busy_reason_is_bounded),
    };
    return cmocka_run_group_tests_name("cluster_busy", tests, NULL, NULL);
}
