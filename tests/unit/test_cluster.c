/* src/cluster: inventory, readiness, holds, the extender's decisions and its JSON. */
#include <errno.h>
#include <jansson.h>
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

static af_cluster *new_cluster(af_gpu_strategy st)
{
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.strategy = st;
    o.clock = fake_clock;
    o.node_timeout_ms = 20000;
    o.reservation_ttl_ms = 30000;
    af_cluster *c = NULL;
    assert_int_equal(af_cluster_new(&o, &c), 0);
    return c;
}

/* A node with n GPUs of total MiB each; free[i] and util[i] per GPU. */
static void report(af_cluster *c, const char *node, size_t n, uint64_t total, const uint64_t *free,
                   const double *util)
{
    af_cluster_gpu g[16];
    memset(g, 0, sizeof(g));
    for (size_t i = 0; i < n; i++) {
        g[i].index = (uint32_t)i;
        snprintf(g[i].name, sizeof(g[i].name), "Sim A100");
        g[i].memory_total_mb = total;
        g[i].memory_free_mb = free ? free[i] : total;
        g[i].memory_used_mb = total - g[i].memory_free_mb;
        g[i].utilization = util ? util[i] : 0;
    }
    af_cluster_report r = {node, g, n};
    char err[128] = "";
    assert_int_equal(af_cluster_report_nodes(c, &r, err, sizeof(err)), 0);
}

static af_cluster_pod share_pod(const char *uid, uint64_t mb)
{
    af_cluster_pod p = {"default", uid, uid, 0, mb, 0, NULL};
    return p;
}

static void test_filter_reasons(void **state)
{
    (void)state;
    fake_now = 1000 * SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    uint64_t fr[2] = {12288, 4096};
    report(c, "small", 2, 16384, fr, NULL);
    report(c, "big", 1, 81920, NULL, NULL);
    fake_now += 5 * SEC;
    report(c, "fresh", 1, 81920, NULL, NULL);
    fake_now += 26 * SEC; /* small and big: 31 s since their report; fresh: 26 s */
    report(c, "fresh", 1, 81920, NULL, NULL);
    const char *names[] = {"small", "big", "fresh", "ghost"};
    af_cluster_verdict v[4];
    af_cluster_pod p = share_pod("p1", 24576);
    assert_int_equal(af_cluster_filter(c, &p, names, 4, v), 1);
    assert_false(v[0].fits);
    assert_string_equal(v[0].reason, "node not ready: no report for 31 s");
    assert_true(v[0].unresolvable);
    assert_string_equal(v[1].reason, "node not ready: no report for 31 s");
    assert_true(v[2].fits);
    assert_string_equal(v[3].reason, "no agentaflow agent on this node");

    /* Now everything is fresh: the reason for small is its memory. */
    report(c, "small", 2, 16384, fr, NULL);
    assert_int_equal(af_cluster_filter(c, &p, names, 2, v), 0);
    assert_string_equal(v[0].reason, "insufficient GPU memory: largest free 12288 MiB < 24576 MiB");
    assert_string_equal(v[1].reason, "node not ready: no report for 31 s");

    /* Whole GPUs: small's GPUs report memory in use, which makes them busy. */
    af_cluster_pod w = {"default", "w", "w", 3, 0, 0, NULL};
    assert_int_equal(af_cluster_filter(c, &w, names, 1, v), 0);
    assert_string_equal(v[0].reason,
                        "insufficient GPUs: 0 free < 3 requested; gpu-0 busy (no process listed, "
                        "4,096 MiB used, not by agentaflow), gpu-1 busy (no process listed, "
                        "12,288 MiB used, not by agentaflow)");
    report(c, "small", 2, 16384, NULL, NULL);
    assert_int_equal(af_cluster_filter(c, &w, names, 1, v), 0);
    assert_string_equal(v[0].reason, "insufficient GPUs: 2 free < 3 requested");
    af_cluster_free(c);
}

static void test_not_ready_after_timeout(void **state)
{
    (void)state;
    fake_now = 50 * SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "n1", 1, 1000, NULL, NULL);
    const char *names[] = {"n1"};
    af_cluster_verdict v;
    af_cluster_pod p = share_pod("p", 10);
    fake_now += 19999 * 1000000ull;
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 1);
    fake_now += 1000000ull;
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 0);
    assert_string_equal(v.reason, "node not ready: no report for 20 s");
    af_cluster_stats st;
    af_cluster_stats_get(c, &st);
    assert_int_equal(st.nodes, 1);
    assert_int_equal(st.ready_nodes, 0);
    /* A report brings it back. */
    report(c, "n1", 1, 1000, NULL, NULL);
    assert_int_equal(af_cluster_filter(c, &p, names, 1, &v), 1);
    af_cluster_free(c);
}

static void test_pass_through(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_BEST_FIT);
    report(c, "n1", 1, 1000, NULL, NULL);
    const char *names[] = {"n1", "no-agent"};
    af_cluster_verdict v[2];
    af_cluster_pod p = {"default", "web", "u", 0, 0, 0, NULL};
    assert_int_equal(af_cluster_filter(c, &p, names, 2, v), 2);
    int64_t s[2] = {7, 7};
    assert_int_equal(af_cluster_prioritize(c, &p, names, 2, s, NULL, 0), 0);
    assert_int_equal(s[0], s[1]);
    af_cluster_stats st;
    af_cluster_stats_get(c, &st);
    assert_int_equal(st.reservations, 0);
    af_cluster_free(c);
}

static void test_strategies(void **state)
{
    (void)state;
    fake_now = SEC;
    const char *names[] = {"a", "b", "c"};
    int64_t s[3];
    char gpu[AF_GPU_ID_MAX];
    /* a: busy with lots free; b: idle with a tight fit; c: half busy, medium free. */
    uint64_t fa[1] = {60000}, fb[1] = {9000}, fc[1] = {20000};
    double ua[1] = {90}, ub[1] = {0}, uc[1] = {50};

    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "a", 1, 80000, fa, ua);
    report(c, "b", 1, 80000, fb, ub);
    report(c, "c", 1, 80000, fc, uc);
    af_cluster_pod p = share_pod("p1", 8000);
    assert_int_equal(af_cluster_prioritize(c, &p, names, 3, s, gpu, sizeof(gpu)), 0);
    assert_int_equal(s[0], 1);
    assert_int_equal(s[1], 10);
    assert_int_equal(s[2], 5);
    assert_string_equal(gpu, "b/gpu-0");

    af_cluster_set_strategy(c, AF_GPU_BEST_FIT);
    af_cluster_release(c, "p1");
    assert_int_equal(af_cluster_prioritize(c, &p, names, 3, s, gpu, sizeof(gpu)), 0);
    assert_int_equal(s[1], 10); /* 1000 MiB left of 80000 */
    assert_true(s[2] > s[0]);
    assert_string_equal(gpu, "b/gpu-0");

    /* priority: an important pod goes where there is headroom, a batch pod packs. */
    af_cluster_set_strategy(c, AF_GPU_PRIORITY);
    af_cluster_release(c, "p1");
    af_cluster_pod hi = share_pod("hi", 1000);
    hi.priority = 1000;
    assert_int_equal(af_cluster_prioritize(c, &hi, names, 3, s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "b/gpu-0");
    assert_int_equal(s[0], 1);
    af_cluster_release(c, "hi");
    af_cluster_pod lo = share_pod("lo", 8500);
    assert_int_equal(af_cluster_prioritize(c, &lo, names, 3, s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "b/gpu-0");
    assert_true(s[1] > s[2] && s[2] > s[0]);
    af_cluster_release(c, "lo");

    /* round_robin walks the nodes in arrival order. */
    af_cluster_set_strategy(c, AF_GPU_ROUND_ROBIN);
    const char *want[] = {"a/gpu-0", "b/gpu-0", "c/gpu-0", "a/gpu-0"};
    for (int i = 0; i < 4; i++) {
        char uid[8];
        snprintf(uid, sizeof(uid), "r%d", i);
        af_cluster_pod r = share_pod(uid, 100);
        assert_int_equal(af_cluster_prioritize(c, &r, names, 3, s, gpu, sizeof(gpu)), 0);
        assert_string_equal(gpu, want[i]);
        assert_int_equal(s[i % 3], 10);
        for (int k = 0; k < 3; k++)
            assert_true(s[k] >= 0 && s[k] <= 10);
    }
    af_cluster_free(c);
}

static void test_reservation_prevents_double_booking(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    uint64_t fr[2] = {0, 0};
    report(c, "full", 2, 40000, fr, NULL);
    report(c, "last", 1, 40000, NULL, NULL); /* the last free GPU */
    const char *names[] = {"full", "last"};
    af_cluster_verdict v[2];
    int64_t s[2];
    char gpu[AF_GPU_ID_MAX];
    af_cluster_pod p1 = {"ml", "train-1", "uid-1", 1, 0, 0, NULL};
    af_cluster_pod p2 = {"ml", "train-2", "uid-2", 1, 0, 0, NULL};
    /* full's GPUs are in use by its report (all their memory): only the last GPU is free. */
    assert_int_equal(af_cluster_filter(c, &p1, names, 2, v), 1);
    assert_false(v[0].fits);
    assert_int_equal(af_cluster_prioritize(c, &p1, names, 2, s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "last/gpu-0");
    assert_int_equal(af_cluster_filter(c, &p2, names, 2, v), 0);
    assert_string_equal(v[1].reason, "insufficient GPUs: 0 free < 1 requested");
    /* The same with share pods against the last GPU. */
    af_cluster_release(c, "uid-1");
    p1.gpus = 0;
    p1.memory_mb = 30000;
    p2.gpus = 0;
    p2.memory_mb = 30000;
    assert_int_equal(af_cluster_prioritize(c, &p1, names, 2, s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "last/gpu-0");
    /* Back to back: the second pod no longer fits on the held GPU. */
    assert_int_equal(af_cluster_filter(c, &p2, names, 2, v), 0);
    assert_string_equal(v[1].reason, "insufficient GPU memory: largest free 10000 MiB < 30000 MiB");
    /* The pod that holds it still fits there (a retry must not fail itself). */
    assert_int_equal(af_cluster_filter(c, &p1, names, 2, v), 1);
    /* Bind keeps the choice. */
    char err[128] = "";
    assert_int_equal(af_cluster_bind(c, &p1, "last", gpu, sizeof(gpu), err, sizeof(err)), 0);
    assert_string_equal(gpu, "last/gpu-0");
    af_cluster_stats st;
    af_cluster_stats_get(c, &st);
    assert_int_equal(st.bindings, 1);
    assert_int_equal(af_cluster_bind(c, &p2, "last", gpu, sizeof(gpu), err, sizeof(err)), -EAGAIN);
    assert_string_equal(err, "insufficient GPU memory: largest free 10000 MiB < 30000 MiB");
    assert_int_equal(af_cluster_bind(c, &p2, "ghost", gpu, sizeof(gpu), err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "no agentaflow agent on node ghost");
    af_cluster_free(c);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "n", 1, 1000, NULL, NULL);
    const char *names[] = {"n"};
    int64_t s;
    af_cluster_verdict v;
    af_cluster_pod a = {"d", "a", "a", 1, 0, 0, NULL}, b = {"d", "b", "b", 1, 0, 0, NULL};
    assert_int_equal(af_cluster_prioritize(c, &a, names, 1, &s, NULL, 0), 0);
    assert_int_equal(af_cluster_filter(c, &b, names, 1, &v), 0);
    assert_string_equal(v.reason, "insufficient GPUs: 0 free < 1 requested");
    fake_now += 29 * SEC;
    report(c, "n", 1, 1000, NULL, NULL); /* holds survive a report */
    assert_int_equal(af_cluster_filter(c, &b, names, 1, &v), 0);
    fake_now += 1 * SEC;
    assert_int_equal(af_cluster_filter(c, &b, names, 1, &v), 1);
    af_cluster_free(c);
}

static void test_snapshot_restore(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "n1", 2, 1000, NULL, NULL);
    report(c, "n2", 1, 1000, NULL, NULL);
    const char *names[] = {"n1", "n2"};
    int64_t s[2];
    af_cluster_pod a = {"d", "a", "a", 2, 0, 0, NULL};
    assert_int_equal(af_cluster_prioritize(c, &a, names, 2, s, NULL, 0), 0);
    af_cluster_state st;
    assert_int_equal(af_cluster_snapshot(c, &st), 0);
    assert_int_equal(st.n_nodes, 2);
    assert_int_equal(st.n_holds, 1);
    assert_int_equal(st.holds[0].gpu_mask, 3);

    af_cluster *d = new_cluster(AF_GPU_LEAST_UTILIZED);
    char err[128] = "";
    assert_int_equal(af_cluster_restore(d, &st, err, sizeof(err)), 0);
    af_cluster_verdict v[2];
    af_cluster_pod b = {"d", "b", "b", 1, 0, 0, NULL};
    /* Restored nodes wait for their agents: their samples are as old as the snapshot. */
    assert_int_equal(af_cluster_filter(d, &b, names, 2, v), 0);
    assert_true(v[1].unresolvable);
    assert_string_equal(v[1].reason, "node not ready: the scheduler restarted and this node's "
                                     "agent has not reported since");
    af_cluster_stats cs;
    af_cluster_stats_get(d, &cs);
    assert_int_equal(cs.nodes, 2);
    assert_int_equal(cs.ready_nodes, 0);
    assert_int_equal(cs.reservations, 1);
    report(d, "n1", 2, 1000, NULL, NULL);
    report(d, "n2", 1, 1000, NULL, NULL);
    /* Ready again; the restored hold still takes n1's two GPUs (no double booking). */
    assert_int_equal(af_cluster_filter(d, &b, names, 2, v), 1);
    assert_false(v[0].fits);
    af_cluster_hold_state hs;
    assert_int_equal(af_cluster_hold_get(d, "a", &hs), 0);
    assert_int_equal(hs.expires_ns, st.holds[0].expires_ns);
    assert_string_equal(hs.node, "n1");
    assert_int_equal(af_cluster_hold_get(d, "b", &hs), -ENOENT);
    /* A bad entry is refused by name and leaves the state alone. */
    strcpy(st.holds[0].node, "nope");
    assert_int_equal(af_cluster_restore(d, &st, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "holds[0].node: nope is not a node with those GPUs");
    assert_int_equal(af_cluster_filter(d, &b, names, 2, v), 1);
    af_cluster_state_free(&st);
    af_cluster_free(d);
    af_cluster_free(c);
}

/* Membership moves on joins and resizes only; the fleet's GPU views; a saved report body
 * read back as a node state. */
static void test_fleet_views(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    uint64_t m0 = af_cluster_membership(c);
    report(c, "n1", 2, 1000, NULL, NULL);
    uint64_t m1 = af_cluster_membership(c);
    assert_true(m1 != m0);
    report(c, "n1", 2, 1000, NULL, NULL);
    assert_true(af_cluster_membership(c) == m1);
    report(c, "n1", 3, 1000, NULL, NULL);
    assert_true(af_cluster_membership(c) != m1);

    char *j = NULL;
    assert_int_equal(af_cluster_gpus_json(c, &j), 0);
    assert_non_null(strstr(j, "{\"gpus\":[{\"id\":\"n1/gpu-0\",\"node\":\"n1\""));
    assert_non_null(strstr(j, "\"total\":3"));
    free(j);
    af_cluster_gpu_info gi;
    assert_int_equal(af_cluster_gpu_get(c, "n1/gpu-2", &gi), 0);
    assert_string_equal(gi.node, "n1");
    assert_int_equal(gi.gpu.index, 2);
    assert_true(gi.ready);
    assert_int_equal(af_cluster_gpu_get(c, "n1/gpu-3", &gi), -ENOENT);
    assert_int_equal(af_cluster_gpu_get(c, "n1/gpu-1x", &gi), -ENOENT);
    assert_int_equal(af_cluster_gpu_get(c, "gpu-1", &gi), -ENOENT);

    af_cluster_state st;
    assert_int_equal(af_cluster_snapshot(c, &st), 0);
    af_cluster_report r = {st.nodes[0].name, st.nodes[0].gpus, st.nodes[0].n_gpus};
    char *body = NULL, err[128] = "";
    assert_int_equal(af_cluster_report_body(&r, &body), 0);
    af_cluster_node_state ns;
    assert_int_equal(af_cluster_node_state_parse(body, strlen(body), 42, &ns, err, sizeof(err)), 0);
    assert_string_equal(ns.name, "n1");
    assert_int_equal(ns.n_gpus, 3);
    assert_int_equal(ns.last_report_ns, 42);
    assert_int_equal(ns.gpus[2].memory_total_mb, 1000);
    af_cluster_state one = {.nodes = malloc(sizeof(ns)), .n_nodes = 1};
    one.nodes[0] = ns;
    af_cluster_state_free(&one);
    assert_int_equal(
        af_cluster_node_state_parse("{\"node\":\"x\",\"gpus\":[{}]}", 24, 1, &ns, err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err, "gpus[0].memory_total_mb: required");
    free(body);
    af_cluster_state_free(&st);
    af_cluster_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON: ExtenderArgs as kube-scheduler sends them.                                          */

static const char pod_json[] =
    "{\"metadata\":{\"name\":\"llm-0\",\"namespace\":\"ml\",\"uid\":\"6f1c-uid\","
    "\"annotations\":{\"agentaflow.io/gpu-memory-mb\":\"24576\","
    "\"agentaflow.io/traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}},"
    "\"spec\":{\"priority\":100,\"containers\":[{\"name\":\"main\",\"image\":\"x\","
    "\"resources\":{\"limits\":{\"cpu\":\"2\",\"memory\":\"8Gi\"}}}]},\"status\":{}}";

static void test_extender_json_nodenames(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    uint64_t fr[2] = {12288, 4096};
    report(c, "small", 2, 16384, fr, NULL);
    report(c, "big", 1, 81920, NULL, NULL);
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"pod\":%s,\"nodes\":null,\"nodenames\":[\"small\",\"big\","
             "\"cpu-only\"]}",
             pod_json);
    char *out = NULL, err[256] = "";
    assert_int_equal(af_cluster_filter_json(c, body, strlen(body), &out, err, sizeof(err)), 0);
    json_t *r = json_loads(out, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "nodenames"), 0)),
                        "big");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "failedNodes"), "small")),
        "insufficient GPU memory: largest free 12288 MiB < 24576 MiB");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(r, "failedAndUnresolvableNodes"), "cpu-only")),
                        "no agentaflow agent on this node");
    assert_string_equal(json_string_value(json_object_get(r, "error")), "");
    json_decref(r);
    free(out);

    assert_int_equal(
        af_cluster_prioritize_json(c, body, strlen(body), &out, NULL, err, sizeof(err)), 0);
    assert_string_equal(out, "[{\"host\":\"small\",\"score\":0},{\"host\":\"big\",\"score\":10},"
                             "{\"host\":\"cpu-only\",\"score\":0}]");
    free(out);
    af_cluster_free(c);
}

/* kube-scheduler marshals ExtenderArgs and ExtenderBindingArgs, Go structs without json tags,
 * under their Go field names. */
static void test_extender_json_go_field_names(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "big", 1, 81920, NULL, NULL);
    char body[2048];
    snprintf(body, sizeof(body), "{\"Pod\":%s,\"Nodes\":null,\"NodeNames\":[\"big\",\"none\"]}",
             pod_json);
    char *out = NULL, err[256] = "";
    assert_int_equal(af_cluster_filter_json(c, body, strlen(body), &out, err, sizeof(err)), 0);
    json_t *r = json_loads(out, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "nodenames"), 0)),
                        "big");
    json_decref(r);
    free(out);

    static const char bind[] = "{\"PodName\":\"llm-0\",\"PodNamespace\":\"ml\","
                               "\"PodUID\":\"6f1c-uid\",\"Node\":\"big\"}";
    af_cluster_binding_args ba;
    assert_int_equal(af_cluster_binding_args_parse(bind, strlen(bind), &ba, err, sizeof(err)), 0);
    assert_string_equal(ba.pod_name, "llm-0");
    assert_string_equal(ba.pod_namespace, "ml");
    assert_string_equal(ba.pod_uid, "6f1c-uid");
    assert_string_equal(ba.node, "big");
    af_cluster_free(c);
}

static void test_extender_json_nodes(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    report(c, "gpu-1", 8, 81920, NULL, NULL);
    char body[4096];
    snprintf(body, sizeof(body),
             "{\"pod\":{\"metadata\":{\"name\":\"t\",\"namespace\":\"ml\",\"uid\":\"u2\"},"
             "\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"limits\":"
             "{\"nvidia.com/gpu\":\"2\"}}},{\"name\":\"b\",\"resources\":{\"limits\":"
             "{\"nvidia.com/gpu\":1}}}]}},"
             "\"nodes\":{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":["
             "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"b\"}},\"status\":{}},"
             "{\"metadata\":{\"name\":\"gpu-2\"}}]}}");
    char *out = NULL, err[256] = "";
    assert_int_equal(af_cluster_filter_json(c, body, strlen(body), &out, err, sizeof(err)), 0);
    json_t *r = json_loads(out, 0, NULL);
    json_t *items = json_object_get(json_object_get(r, "nodes"), "items");
    assert_int_equal(json_array_size(items), 1);
    /* The node object comes back whole, labels included. */
    json_t *m = json_object_get(json_array_get(items, 0), "metadata");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "labels"), "a")), "b");
    assert_true(json_is_null(json_object_get(r, "nodenames")));
    json_decref(r);
    free(out);
    af_cluster_free(c);
}

static void expect_bad(af_cluster *c, const char *body, const char *want)
{
    char *out = NULL, err[256] = "";
    assert_int_equal(af_cluster_filter_json(c, body, strlen(body), &out, err, sizeof(err)),
                     -EINVAL);
    assert_null(out);
    if (!strstr(err, want))
        fail_msg("error %s, want %s", err, want);
}

static void test_extender_json_bad(void **state)
{
    (void)state;
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.max_nodes = 100;
    af_cluster *c = NULL;
    assert_int_equal(af_cluster_new(&o, &c), 0);
    expect_bad(c, "{\"nodenames\":[]}", "pod: required");
    expect_bad(c, "{\"pod\":[],\"nodenames\":[]}", "pod: expected an object");
    expect_bad(c, "{\"pod\":{}}", "nodes or nodenames");
    expect_bad(c, "{\"pod\":{},\"nodenames\":\"a\"}", "nodenames: expected an array");
    expect_bad(c, "{\"pod\":{},\"nodenames\":[1]}", "nodenames[0]");
    expect_bad(c, "{\"pod\":{\"metadata\":{\"name\":5}},\"nodenames\":[]}",
               "pod.metadata.name: expected a string");
    expect_bad(c, "{\"pod\":{\"spec\":{\"priority\":\"high\"}},\"nodenames\":[]}",
               "pod.spec.priority");
    expect_bad(c,
               "{\"pod\":{\"spec\":{\"containers\":[{\"resources\":{\"limits\":"
               "{\"nvidia.com/gpu\":\"two\"}}}]}},\"nodenames\":[]}",
               "pod.spec.containers[0].resources.limits[\"nvidia.com/gpu\"]");
    expect_bad(c,
               "{\"pod\":{\"metadata\":{\"annotations\":{\"agentaflow.io/gpu-memory-mb\":\"-1\"}}},"
               "\"nodenames\":[]}",
               "agentaflow.io/gpu-memory-mb");
    expect_bad(c, "{\"pod\":{},\"nodes\":{\"items\":[{}]}}", "nodes.items[0].metadata.name");
    expect_bad(c, "[1]", "must be a JSON object");
    expect_bad(c, "{\"pod\":", "malformed JSON");
    /* More names than max_nodes. */
    {
        size_t cap = 100000 * 8 + 64;
        char *big = malloc(cap);
        size_t used = (size_t)snprintf(big, cap, "{\"pod\":{},\"nodenames\":[");
        for (int i = 0; i < 100000; i++)
            used += (size_t)snprintf(big + used, cap - used, "%s\"n%d\"", i ? "," : "", i % 1000);
        snprintf(big + used, cap - used, "]}");
        expect_bad(c, big, "nodenames: 100000 nodes, more than the 100 allowed");
        free(big);
    }
    af_cluster_free(c);
}

static void test_report_json(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    af_gpu_process pr = {42, "python", 1024, 'C'};
    af_cluster_gpu g[2];
    memset(g, 0, sizeof(g));
    g[0].index = 0;
    strcpy(g[0].name, "A100 \"sim\"");
    g[0].memory_total_mb = 40960;
    g[0].memory_used_mb = 1024;
    g[0].memory_free_mb = 39936;
    g[0].utilization = 12.5;
    g[0].procs = &pr;
    g[0].n_procs = 1;
    g[1] = g[0];
    g[1].index = 1;
    g[1].health = AF_GPU_CRITICAL;
    g[1].n_procs = 0;
    af_cluster_report r = {"node-a", g, 2};
    char *body = NULL;
    assert_int_equal(af_cluster_report_body(&r, &body), 0);
    char err[256] = "";
    assert_int_equal(af_cluster_report_json(c, body, strlen(body), err, sizeof(err)), 0);
    free(body);
    char *nodes = NULL;
    assert_int_equal(af_cluster_nodes_json(c, &nodes), 0);
    json_t *j = json_loads(nodes, 0, NULL);
    assert_non_null(j);
    json_t *n0 = json_array_get(json_object_get(j, "nodes"), 0);
    assert_true(json_is_true(json_object_get(n0, "ready")));
    json_t *gp = json_array_get(json_object_get(n0, "gpus"), 1);
    assert_string_equal(json_string_value(json_object_get(gp, "id")), "node-a/gpu-1");
    assert_string_equal(json_string_value(json_object_get(gp, "health")), "critical");
    json_decref(j);
    free(nodes);

    /* A critical GPU takes no work. */
    const char *names[] = {"node-a"};
    af_cluster_pod w = {"d", "w", "w", 2, 0, 0, NULL};
    af_cluster_verdict v;
    assert_int_equal(af_cluster_filter(c, &w, names, 1, &v), 0);

    const struct {
        const char *body, *want;
    } bad[] = {
        {"{\"gpus\":[]}", "node: required"},
        {"{\"node\":\"a b\",\"gpus\":[]}", "node: expected a node name"},
        {"{\"node\":\"a\",\"gpus\":{}}", "gpus: required, an array"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":0}]}",
         "gpus[0].memory_total_mb: must be greater than 0"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":\"8\"}]}", "gpus[0].memory_total_mb"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":8,\"utilization\":101}]}",
         "gpus[0].utilization"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":8,\"health\":\"meh\"}]}",
         "gpus[0].health"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":8},{\"index\":0,\"memory_total_mb\":8}]}",
         "gpus[1].index: 0 appears twice"},
        {"{\"node\":\"a\",\"gpus\":[{\"memory_total_mb\":8,\"memory_used_mb\":9}]}",
         "gpus[0].memory_used_mb"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            af_cluster_report_json(c, bad[i].body, strlen(bad[i].body), err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("%s: error %s, want %s", bad[i].body, err, bad[i].want);
    }
    af_cluster_free(c);
}

static void test_spans(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.tracing.tracer = env.tracer;
    af_cluster *c = NULL;
    assert_int_equal(af_cluster_new(&o, &c), 0);
    report(c, "n", 1, 1000, NULL, NULL);
    char body[2048];
    snprintf(body, sizeof(body), "{\"pod\":%s,\"nodenames\":[\"n\",\"m\"]}", pod_json);
    char *out = NULL, err[256] = "";
    assert_int_equal(af_cluster_filter_json(c, body, strlen(body), &out, err, sizeof(err)), 0);
    free(out);
    af_span_copy *spans[8];
    size_t n = af_test_spans(&env, spans, 8);
    const af_span_data *d = af_test_find_span(spans, n, "gpu_scheduling.filter");
    assert_non_null(d);
    assert_int_equal(d->kind, AF_SPAN_KIND_SERVER);
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, "k8s.pod.uid");
    assert_non_null(a);
    assert_string_equal(a->v.s.ptr, "6f1c-uid");
    a = af_test_find_attr(d->attrs, d->n_attrs, "scheduler.candidate_count");
    assert_int_equal(a->v.i, 2);
    a = af_test_find_attr(d->attrs, d->n_attrs, "scheduler.reasons");
    assert_non_null(a);
    assert_non_null(strstr(a->v.s.ptr, "m: no agentaflow agent on this node"));
    assert_int_equal(d->n_links, 1);
    assert_int_equal(d->links[0].trace_id[0], 0x0a);
    af_test_spans_free(spans, n);
    af_cluster_free(c);
    af_test_env_free(&env);
}

/* Bind in two steps: the span stays open across the caller's Kubernetes calls and ends with
 * their outcome. */
static void test_bind_span_ends_with_the_answer(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_cluster_opts o;
    af_cluster_opts_init(&o);
    o.tracing.tracer = env.tracer;
    af_cluster *c = NULL;
    assert_int_equal(af_cluster_new(&o, &c), 0);
    report(c, "n", 1, 1000, NULL, NULL);
    const char *names[] = {"n"};
    int64_t s;
    af_cluster_pod p = {"ml", "train", "train", 1, 0, 0, NULL};
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, NULL, 0), 0);
    char gpu[AF_GPU_ID_MAX], err[AF_CLUSTER_REASON_MAX] = "";
    af_span sp;
    assert_int_equal(af_cluster_bind_begin(c, &p, "n", gpu, sizeof(gpu), err, sizeof(err), &sp), 0);
    assert_string_equal(gpu, "n/gpu-0");
    af_span_copy *spans[8];
    size_t n = af_test_spans(&env, spans, 8);
    assert_null(af_test_find_span(spans, n, "gpu_scheduling.bind")); /* still open */
    af_test_spans_free(spans, n);
    af_cluster_bind_end(sp, -EIO, "Kubernetes API POST /binding answered 500");
    n = af_test_spans(&env, spans, 8);
    const af_span_data *d = af_test_find_span(spans, n, "gpu_scheduling.bind");
    assert_non_null(d);
    assert_int_equal(d->status, AF_STATUS_ERROR);
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, "scheduler.reasons");
    assert_non_null(a);
    assert_string_equal(a->v.s.ptr, "Kubernetes API POST /binding answered 500");
    a = af_test_find_attr(d->attrs, d->n_attrs, "gpu.id");
    assert_string_equal(a->v.s.ptr, "n/gpu-0");
    af_test_spans_free(spans, n);
    /* Bad arguments start no span. */
    assert_int_equal(af_cluster_bind_begin(c, &p, NULL, gpu, sizeof(gpu), err, sizeof(err), &sp),
                     -EINVAL);
    assert_false(af_span_is_recording(sp));
    af_cluster_free(c);
    af_test_env_free(&env);
}

/* GPU ids carry the index the agent reported, not the position in its report. */
static void test_gpu_ids_follow_reported_index(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_LEAST_UTILIZED);
    const char *body = "{\"node\":\"n\",\"gpus\":[{\"index\":2,\"memory_total_mb\":100,"
                       "\"utilization\":90},{\"index\":5,\"memory_total_mb\":100,"
                       "\"utilization\":10}]}";
    char err[128] = "";
    assert_int_equal(af_cluster_report_json(c, body, strlen(body), err, sizeof(err)), 0);
    const char *names[] = {"n"};
    int64_t s;
    char gpu[AF_GPU_ID_MAX];
    af_cluster_pod p = share_pod("p", 10);
    assert_int_equal(af_cluster_prioritize(c, &p, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "n/gpu-5");
    af_cluster_pod w = {"d", "w", "w", 2, 0, 0, NULL};
    af_cluster_release(c, "p");
    assert_int_equal(af_cluster_prioritize(c, &w, names, 1, &s, gpu, sizeof(gpu)), 0);
    assert_string_equal(gpu, "n/gpu-2,n/gpu-5");
    af_cluster_free(c);
}

static void test_scale_1000x8(void **state)
{
    (void)state;
    fake_now = SEC;
    af_cluster *c = new_cluster(AF_GPU_BEST_FIT);
    enum { N = 1000 };
    static char names_buf[N][16];
    const char *names[N];
    for (int i = 0; i < N; i++) {
        snprintf(names_buf[i], sizeof(names_buf[i]), "node-%04d", i);
        names[i] = names_buf[i];
        uint64_t fr[8];
        double ut[8];
        for (int k = 0; k < 8; k++) {
            fr[k] = (uint64_t)((i * 7 + k * 13) % 80) * 1024;
            ut[k] = (i + k) % 100;
        }
        report(c, names[i], 8, 81920, fr, ut);
    }
    af_cluster_verdict *v = calloc(N, sizeof(*v));
    int64_t *s = calloc(N, sizeof(*s));
    af_cluster_pod p = share_pod("big", 79 * 1024);
    int fit = af_cluster_filter(c, &p, names, N, v);
    assert_true(fit > 0 && fit < N);
    char gpu[AF_GPU_ID_MAX];
    assert_int_equal(af_cluster_prioritize(c, &p, names, N, s, gpu, sizeof(gpu)), 0);
    for (int i = 0; i < N; i++)
        assert_true(s[i] >= 0 && s[i] <= 10 && (v[i].fits || s[i] == 0));
    assert_non_null(strstr(gpu, "/gpu-"));
    af_cluster_stats st;
    af_cluster_stats_get(c, &st);
    assert_int_equal(st.gpus, N * 8);
    free(v);
    free(s);
    af_cluster_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_reasons),
        cmocka_unit_test(test_not_ready_after_timeout),
        cmocka_unit_test(test_pass_through),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_reservation_prevents_double_booking),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_fleet_views),
        cmocka_unit_test(test_extender_json_nodenames),
        cmocka_unit_test(test_extender_json_nodes),
        cmocka_unit_test(test_extender_json_go_field_names),
        cmocka_unit_test(test_extender_json_bad),
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_bind_span_ends_with_the_answer),
        cmocka_unit_test(test_gpu_ids_follow_reported_index),
        cmocka_unit_test(test_scale_1000x8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
