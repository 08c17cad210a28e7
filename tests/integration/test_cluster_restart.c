/*
 * integration.cluster_restart: the cluster scheduler restarted on its data directory. One
 * scheduler (serve --cluster --data-dir) and three agents on loopback; a reservation made
 * through /scheduler/filter + /scheduler/prioritize; the scheduler stopped with SIGTERM, then
 * (after a second reservation) killed with SIGKILL, and each time started again on the same
 * directory and port. Inventory and reservations come back (a pod asking for the held GPUs
 * finds none free: no double booking), the restored nodes are not ready while their agents
 * are stopped (SIGSTOP) and ready again once they report. A reservation that cannot be
 * saved (RLIMIT_FSIZE on the scheduler) answers 503 and frees its GPU. Every wait polls.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOKEN "cluster-restart-token"
static const char *const auth_hdr[] = {"Content-Type: application/json",
                                       "Authorization: Bearer " TOKEN, NULL};
static const char *const env_token[] = {"AGENTAFLOW_AUTH_TOKEN=" TOKEN, NULL};

/* The simulated agents' GPUs always run processes: whole GPUs are judged by holds alone. */
static const char sched_cfg[] = "server:\n  load_generator: false\ncluster:\n"
                                "  node_timeout: 1500ms\n  reservation_ttl: 10m\n"
                                "  whole_gpu_reported_use: false\n";
static const char *const node_names[] = {"node-1", "node-2", "node-4"};

typedef struct fleet {
    daemon_t sched;
    daemon_t agents[3];
    char data_dir[400];
    char port[16], mport[16];
} fleet;

/* Starts the scheduler on the fleet's data directory, on its first port again after a
 * restart (the agents keep reporting to that URL). */
static void start_scheduler(fleet *f)
{
    const char *first[] = {"--cluster", "--data-dir", f->data_dir, NULL};
    const char *again[] = {"--cluster", "--data-dir",     f->data_dir, "--port",
                           f->port,     "--metrics-port", f->mport,    NULL};
    daemon_start(&f->sched, sched_cfg, f->port[0] ? again : first, env_token);
    snprintf(f->port, sizeof(f->port), "%d", f->sched.port);
    snprintf(f->mport, sizeof(f->mport), "%d", f->sched.mport);
}

static json_t *nodes(fleet *f)
{
    return get_json(f->sched.port, "/api/v1/cluster/nodes", 200);
}

static long ready_count(fleet *f)
{
    json_t *j = nodes(f);
    long r = (long)json_integer_value(json_object_get(j, "ready"));
    json_decref(j);
    return r;
}

static void wait_ready(fleet *f, long want)
{
    uint64_t deadline = now_ms() + 20000;
    while (ready_count(f) != want) {
        if (now_ms() > deadline)
            fail_msg("%ld nodes never became ready (see %s)", want, f->agents[0].logfile);
        pause_ms(50);
    }
}

/* node-1, node-2, node-4 (with 1, 2, 4 GPUs), the first n of them; waits until ready. */
static void start_agents(fleet *f, int n)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->sched.port);
    static const int gpus[] = {1, 2, 4};
    for (int i = 0; i < n; i++) {
        char acfg[256];
        snprintf(acfg, sizeof(acfg),
                 "server:\n  simulated_gpus: %d\nagent:\n  report_interval: 200ms\n", gpus[i]);
        const char *ax[] = {"--scheduler", url, "--node-name", node_names[i], NULL};
        daemon_start_role(&f->agents[i], "agent", acfg, ax, env_token);
    }
    wait_ready(f, n);
}

static json_t *post(fleet *f, const char *path, const char *body)
{
    resp r = http(f->sched.port, "POST", path, body, auth_hdr);
    if (r.status != 200)
        fail_msg("POST %s: %ld: %s", path, r.status, r.body ? r.body : "");
    json_t *j = json_of(&r);
    free(r.body);
    return j;
}

static char *pod_args(const char *uid, int gpus)
{
    char *s = malloc(1024);
    snprintf(s, 1024,
             "{\"pod\":{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ml\",\"uid\":\"%s\"},"
             "\"spec\":{\"containers\":[{\"name\":\"m\",\"resources\":{\"limits\":"
             "{\"nvidia.com/gpu\":\"%d\"}}}]}},"
             "\"nodenames\":[\"node-1\",\"node-2\",\"node-4\"]}",
             uid, uid, gpus);
    return s;
}

/* filter + prioritize as kube-scheduler does; returns the node the pod's hold is on. */
static void reserve(fleet *f, const char *uid, int gpus, const char *want_node)
{
    char *a = pod_args(uid, gpus);
    json_decref(post(f, "/scheduler/filter", a));
    json_decref(post(f, "/scheduler/prioritize", a));
    free(a);
    json_t *j = nodes(f);
    json_t *res = json_object_get(j, "reservations");
    bool found = false;
    for (size_t i = 0; i < json_array_size(res); i++) {
        json_t *h = json_array_get(res, i);
        if (strcmp(json_string_value(json_object_get(h, "uid")), uid) != 0)
            continue;
        found = true;
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%s/gpu-", want_node);
        assert_non_null(strstr(json_string_value(json_object_get(h, "gpu")), prefix));
    }
    if (!found)
        fail_msg("no reservation for %s", uid);
    json_decref(j);
}

/* The reservation of uid in the node list: its GPU ids and expiry, or false. */
static bool reservation(fleet *f, const char *uid, char *gpu, size_t cap, long *expires_in_ms)
{
    json_t *j = nodes(f);
    json_t *res = json_object_get(j, "reservations");
    bool found = false;
    for (size_t i = 0; i < json_array_size(res) && !found; i++) {
        json_t *h = json_array_get(res, i);
        if (strcmp(json_string_value(json_object_get(h, "uid")), uid) != 0)
            continue;
        found = true;
        snprintf(gpu, cap, "%s", json_string_value(json_object_get(h, "gpu")));
        *expires_in_ms = (long)json_integer_value(json_object_get(h, "expires_in_ms"));
    }
    json_decref(j);
    return found;
}

static void agents_signal(fleet *f, int sig)
{
    for (int i = 0; i < 3; i++)
        kill(f->agents[i].pid, sig);
}

/* After a restart with the agents stopped: the inventory is back and not ready, with the
 * reason in plain words; the reservations are back with their expiry; then the agents
 * report again and the held GPUs stay held. */
static void check_restored(fleet *f, const char *const *uids, int n_uids, const long *expiry)
{
    json_t *j = nodes(f);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "ready")), 0);
    size_t gpus = 0;
    json_t *ns = json_object_get(j, "nodes");
    for (size_t i = 0; i < json_array_size(ns); i++) {
        json_t *n = json_array_get(ns, i);
        assert_true(json_is_true(json_object_get(n, "awaiting_report")));
        gpus += json_array_size(json_object_get(n, "gpus"));
    }
    assert_int_equal(gpus, 7);
    json_decref(j);
    char *a = pod_args("probe", 1);
    json_t *r = post(f, "/scheduler/filter", a);
    const char *why = json_string_value(
        json_object_get(json_object_get(r, "failedAndUnresolvableNodes"), "node-2"));
    assert_non_null(why);
    assert_string_equal(why, "node not ready: the scheduler restarted and this node's agent has "
                             "not reported since");
    json_decref(r);
    for (int i = 0; i < n_uids; i++) {
        char gpu[256];
        long exp = 0;
        if (!reservation(f, uids[i], gpu, sizeof(gpu), &exp))
            fail_msg("reservation %s lost in the restart", uids[i]);
        /* The original expiry, not a fresh TTL. */
        assert_true(exp <= expiry[i]);
        assert_true(exp > 0);
    }
    agents_signal(f, SIGCONT);
    wait_ready(f, 3);
    /* node-4's four GPUs are still held: a pod asking for one finds none free there. */
    r = post(f, "/scheduler/filter", a);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "failedNodes"), "node-4")),
        "insufficient GPUs: 0 free < 1 requested");
    json_decref(r);
    free(a);
}

static void test_restart_keeps_inventory_and_reservations(void **state)
{
    (void)state;
    fleet f;
    memset(&f, 0, sizeof(f));
    snprintf(f.data_dir, sizeof(f.data_dir), "%s/sched-data", g_tmp);
    start_scheduler(&f);
    start_agents(&f, 3);
    reserve(&f, "big", 4, "node-4");
    char gpu[256];
    long exp[2];
    assert_true(reservation(&f, "big", gpu, sizeof(gpu), &exp[0]));
    assert_string_equal(gpu, "node-4/gpu-0,node-4/gpu-1,node-4/gpu-2,node-4/gpu-3");

    /* SIGTERM: a clean stop (the last inventory checkpoint is written). */
    agents_signal(&f, SIGSTOP);
    assert_int_equal(daemon_stop(&f.sched), 0);
    start_scheduler(&f);
    const char *uids1[] = {"big"};
    check_restored(&f, uids1, 1, exp);

    /* SIGKILL after a second reservation: what was answered was committed. */
    reserve(&f, "pair", 2, "node-2");
    assert_true(reservation(&f, "big", gpu, sizeof(gpu), &exp[0]));
    assert_true(reservation(&f, "pair", gpu, sizeof(gpu), &exp[1]));
    agents_signal(&f, SIGSTOP);
    kill(f.sched.pid, SIGKILL);
    waitpid(f.sched.pid, NULL, 0);
    f.sched.pid = 0;
    start_scheduler(&f);
    const char *uids2[] = {"big", "pair"};
    check_restored(&f, uids2, 2, exp);
    /* node-2's two GPUs are held by "pair": a two-GPU pod has no node left. */
    char *a = pod_args("third", 2);
    json_t *r = post(&f, "/scheduler/filter", a);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 0);
    json_decref(r);
    free(a);

    for (int i = 0; i < 3; i++)
        assert_int_equal(daemon_stop(&f.agents[i]), 0);
    assert_int_equal(daemon_stop(&f.sched), 0);
}

/* A reservation that cannot be saved (the data directory is full) is not given out: the
 * extender answers 503 storage_unavailable and the GPU is free again. */
static void test_unsaved_hold_released(void **state)
{
    (void)state;
    fleet f;
    memset(&f, 0, sizeof(f));
    snprintf(f.data_dir, sizeof(f.data_dir), "%s/full-data", g_tmp);
    start_scheduler(&f);
    start_agents(&f, 1); /* node-1: one GPU */
    /* The scheduler's files may not grow past 4 KiB: the next WAL frame cannot be written. */
    struct rlimit lim = {4096, RLIM_INFINITY};
    assert_int_equal(prlimit(f.sched.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    char *a = pod_args("unsaved", 1);
    resp r = http(f.sched.port, "POST", "/scheduler/prioritize", a, auth_hdr);
    expect_error(&r, 503, "storage_unavailable");
    free(r.body);
    free(a);
    char gpu[256];
    long exp = 0;
    assert_false(reservation(&f, "unsaved", gpu, sizeof(gpu), &exp));
    /* Space returns: node-1's only GPU goes to the next pod, and that hold is kept. */
    lim.rlim_cur = RLIM_INFINITY;
    assert_int_equal(prlimit(f.sched.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    reserve(&f, "saved", 1, "node-1");
    assert_int_equal(daemon_stop(&f.agents[0]), 0);
    assert_int_equal(daemon_stop(&f.sched), 0);
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "cluster-restart");
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_keeps_inventory_and_reservations),
        cmocka_unit_test(test_unsaved_hold_released),
    };
    rc = cmocka_run_group_tests_name("cluster_restart", tests, NULL, NULL);
    harness_fini();
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", g_tmp);
    if (rc == 0 && system(rm) != 0)
        return 1;
    return rc;
}
