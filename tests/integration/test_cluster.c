/*
 * integration.cluster: one cluster scheduler (serve --cluster) and three agents with different
 * simulated GPU counts on loopback. Filter and prioritize per strategy, an agent killed and its
 * node filtered as not ready after a short node_timeout, hostile extender bodies, and bind
 * against a loopback HTTPS stand-in for the Kubernetes API (certificates made by the openssl
 * command; that test is skipped without it).
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "http_receiver.h"

#define TOKEN "cluster-it-token"
static const char *const auth_hdr[] = {"Content-Type: application/json",
                                       "Authorization: Bearer " TOKEN, NULL};
static const char *const env_token[] = {"AGENTAFLOW_AUTH_TOKEN=" TOKEN, NULL};

typedef struct fleet {
    daemon_t sched;
    daemon_t agents[3];
} fleet;

/* The simulated agents' GPUs always run processes (their workload patterns), so the fleet's
 * scheduler judges whole GPUs by agentaflow's holds alone; test_busy_after_ttl reports real
 * use itself. */
static void start_fleet(fleet *f, const char *strategy, const char *extra_cfg)
{
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "server:\n  load_generator: false\ncluster:\n  strategy: %s\n"
             "  node_timeout: 1500ms\n  whole_gpu_reported_use: false\n%s",
             strategy, extra_cfg ? extra_cfg : "");
    const char *sx[] = {"--cluster", NULL};
    daemon_start(&f->sched, cfg, sx, env_token);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->sched.port);
    static const char *const names[] = {"node-1", "node-2", "node-4"};
    static const int gpus[] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        char acfg[256];
        snprintf(acfg, sizeof(acfg),
                 "server:\n  simulated_gpus: %d\nagent:\n  report_interval: 200ms\n", gpus[i]);
        const char *ax[] = {"--scheduler", url, "--node-name", names[i], NULL};
        daemon_start_role(&f->agents[i], "agent", acfg, ax, env_token);
    }
    /* Poll until the three nodes are in and ready. */
    uint64_t deadline = now_ms() + 20000;
    for (;;) {
        json_t *j = get_json(f->sched.port, "/api/v1/cluster/nodes", 200);
        long ready = json_integer_value(json_object_get(j, "ready"));
        json_decref(j);
        if (ready == 3)
            break;
        if (now_ms() > deadline)
            fail_msg("agents did not report (see %s)", f->agents[0].logfile);
        pause_ms(50);
    }
}

static void stop_fleet(fleet *f)
{
    for (int i = 0; i < 3; i++)
        if (f->agents[i].pid > 0)
            assert_int_equal(daemon_stop(&f->agents[i]), 0);
    assert_int_equal(daemon_stop(&f->sched), 0);
}

static char *args_for(const char *uid, int whole, int mb, int priority)
{
    char *s = malloc(1024);
    snprintf(s, 1024,
             "{\"pod\":{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ml\",\"uid\":\"%s\","
             "\"annotations\":{%s%d%s}},\"spec\":{\"priority\":%d,\"containers\":[{\"name\":\"m\","
             "\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"%d\"}}}]}},"
             "\"nodenames\":[\"node-1\",\"node-2\",\"node-4\",\"cpu-0\"]}",
             uid, uid, mb ? "\"agentaflow.io/gpu-memory-mb\":\"" : "\"x\":\"", mb, "\"", priority,
             whole);
    return s;
}

static json_t *post(int port, const char *path, const char *body, long want)
{
    resp r = http(port, "POST", path, body, auth_hdr);
    if (r.status != want)
        fail_msg("POST %s: %ld, want %ld: %s", path, r.status, want, r.body ? r.body : "");
    json_t *j = json_of(&r);
    free(r.body);
    return j;
}

/* The score of host in a HostPriorityList. */
static long score_of(json_t *list, const char *host)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        if (!strcmp(json_string_value(json_object_get(e, "host")), host))
            return (long)json_integer_value(json_object_get(e, "score"));
    }
    fail_msg("no score for %s", host);
    return -1;
}

static const char *top_host(json_t *list)
{
    const char *best = NULL;
    long bs = -1;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        long s = (long)json_integer_value(json_object_get(e, "score"));
        assert_true(s >= 0 && s <= 10);
        if (s > bs) {
            bs = s;
            best = json_string_value(json_object_get(e, "host"));
        }
    }
    return best;
}

static void test_filter_and_not_ready(void **state)
{
    (void)state;
    fleet f;
    start_fleet(&f, "least_utilized", NULL);
    char *a = args_for("three", 3, 0, 0);
    json_t *r = post(f.sched.port, "/scheduler/filter", a, 200);
    json_t *keep = json_object_get(r, "nodenames");
    assert_int_equal(json_array_size(keep), 1);
    assert_string_equal(json_string_value(json_array_get(keep, 0)), "node-4");
    json_t *failed = json_object_get(r, "failedNodes");
    assert_string_equal(json_string_value(json_object_get(failed, "node-1")),
                        "insufficient GPUs: 1 free < 3 requested");
    assert_string_equal(json_string_value(json_object_get(failed, "node-2")),
                        "insufficient GPUs: 2 free < 3 requested");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(r, "failedAndUnresolvableNodes"), "cpu-0")),
                        "no agentaflow agent on this node");
    json_decref(r);
    free(a);

    /* A pod asking for nothing passes through everywhere with equal scores. */
    a = args_for("web", 0, 0, 0);
    r = post(f.sched.port, "/scheduler/filter", a, 200);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 4);
    json_decref(r);
    r = post(f.sched.port, "/scheduler/prioritize", a, 200);
    assert_int_equal(score_of(r, "node-1"), score_of(r, "cpu-0"));
    json_decref(r);
    free(a);

    /* /metrics carries every node's GPUs. */
    assert_int_equal(metric_value(f.sched.mport, "agentaflow_cluster_nodes{state=\"ready\"}"), 3);
    resp m = http(f.sched.mport, "GET", "/metrics", NULL, NULL);
    assert_non_null(strstr(m.body, "agentaflow_cluster_gpu_utilization_percent{node=\"node-4\","
                                   "gpu_id=\"node-4/gpu-3\""));
    free(m.body);
    /* The fleet's GPUs on the single-machine GPU routes and the WebSocket feed. */
    json_t *gl = get_json(f.sched.port, "/api/v1/gpus", 200);
    assert_int_equal(json_integer_value(json_object_get(gl, "total")), 7);
    json_t *last = json_array_get(json_object_get(gl, "gpus"), 6);
    assert_string_equal(json_string_value(json_object_get(last, "id")), "node-4/gpu-3");
    assert_string_equal(json_string_value(json_object_get(last, "node")), "node-4");
    assert_true(json_is_true(json_object_get(last, "node_ready")));
    json_decref(gl);
    json_t *gm = get_json(f.sched.port, "/api/v1/gpu/node-4%2Fgpu-3/metrics", 200);
    assert_string_equal(json_string_value(json_object_get(gm, "gpu_id")), "node-4/gpu-3");
    json_decref(gm);
    json_t *gp = get_json(f.sched.port, "/api/v1/gpu/node-2%2Fgpu-1/processes", 200);
    assert_string_equal(json_string_value(json_object_get(gp, "gpu_id")), "node-2/gpu-1");
    json_decref(gp);
    resp gh = http(f.sched.port, "GET", "/api/v1/gpu/node-2%2Fgpu-1/history", NULL, NULL);
    expect_error(&gh, 404, "not_found");
    assert_non_null(strstr(gh.body, "the agent on node node-2 keeps this GPU's history"));
    free(gh.body);
    gh = http(f.sched.port, "GET", "/api/v1/gpu/node-2%2Fgpu-9/metrics", NULL, NULL);
    expect_error(&gh, 404, "not_found");
    free(gh.body);
    int ws = ws_connect(f.sched.port, NULL);
    assert_true(ws >= 0);
    json_t *mu = ws_expect(ws, "metrics_update");
    json_t *gmap = json_object_get(json_object_get(mu, "data"), "gpu_metrics");
    assert_int_equal(json_object_size(gmap), 7);
    assert_non_null(json_object_get(gmap, "node-1/gpu-0"));
    json_decref(mu);
    close(ws);
    /* The agent's own Prometheus and /health. */
    assert_true(metric_value(f.agents[2].mport, "agentaflow_cluster_utilization_percent") >= 0);
    json_t *h = get_json(f.agents[2].port, "/health", 200);
    json_decref(h);

    /* Kill node-2's agent: within the short node_timeout it is filtered as not ready. */
    kill(f.agents[1].pid, SIGKILL);
    waitpid(f.agents[1].pid, NULL, 0);
    f.agents[1].pid = 0;
    a = args_for("one", 1, 0, 0);
    uint64_t deadline = now_ms() + 15000;
    const char *why = NULL;
    for (;;) {
        r = post(f.sched.port, "/scheduler/filter", a, 200);
        why = json_string_value(
            json_object_get(json_object_get(r, "failedAndUnresolvableNodes"), "node-2"));
        if (why) {
            assert_non_null(strstr(why, "node not ready: no report for "));
            json_decref(r);
            break;
        }
        json_decref(r);
        if (now_ms() > deadline)
            fail_msg("node-2 never became not ready");
        pause_ms(100);
    }
    free(a);
    json_t *nodes = get_json(f.sched.port, "/api/v1/cluster/nodes", 200);
    assert_int_equal(json_integer_value(json_object_get(nodes, "ready")), 2);
    json_decref(nodes);
    stop_fleet(&f);
}

static void test_prioritize_per_strategy(void **state)
{
    (void)state;
    static const char *const strategies[] = {"least_utilized", "best_fit", "priority",
                                             "round_robin"};
    for (int s = 0; s < 4; s++) {
        fleet f;
        start_fleet(&f, strategies[s], NULL);
        char *a = args_for("p1", 1, 0, 0);
        json_t *r = post(f.sched.port, "/scheduler/prioritize", a, 200);
        assert_int_equal(json_array_size(r), 4);
        assert_int_equal(score_of(r, "cpu-0"), 0);
        char top[64]; /* r is freed before the round_robin check reads it */
        snprintf(top, sizeof(top), "%s", top_host(r));
        if (s == 1 || s == 2) /* packing: the 1-GPU node is the tightest whole-GPU fit */
            assert_string_equal(top, "node-1");
        /* The choice is held on a node with the top score (scores are rounded to 0-10, so
         * the scheduler's pick among tied nodes is its own): the node list shows it. */
        json_t *nodes = get_json(f.sched.port, "/api/v1/cluster/nodes", 200);
        json_t *res = json_array_get(json_object_get(nodes, "reservations"), 0);
        assert_non_null(res);
        char held[80];
        snprintf(held, sizeof(held), "%s", json_string_value(json_object_get(res, "gpu")));
        assert_non_null(strchr(held, '/'));
        *strchr(held, '/') = '\0';
        assert_int_equal(score_of(r, held), score_of(r, top));
        json_decref(nodes);
        json_decref(r);
        free(a);
        if (s == 3) {
            /* round_robin: the next pod goes to the next node. */
            a = args_for("p2", 1, 0, 0);
            r = post(f.sched.port, "/scheduler/prioritize", a, 200);
            assert_string_not_equal(top_host(r), top);
            json_decref(r);
            free(a);
        }
        if (s == 1) {
            /* Back to back: node-1's only GPU is held, so the next pod cannot have it. */
            a = args_for("p2", 1, 0, 0);
            r = post(f.sched.port, "/scheduler/filter", a, 200);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(r, "failedNodes"), "node-1")),
                "insufficient GPUs: 0 free < 1 requested");
            json_decref(r);
            free(a);
        }
        stop_fleet(&f);
    }
}

static void test_bad_extender_args(void **state)
{
    (void)state;
    daemon_t d;
    const char *sx[] = {"--cluster", NULL};
    daemon_start(&d, "server:\n  load_generator: false\ncluster:\n  max_nodes: 1000\n", sx,
                 env_token);
    const struct {
        const char *body, *want;
    } bad[] = {
        {"{\"nodenames\":[\"a\"]}", "pod: required"},
        {"{\"pod\":7,\"nodenames\":[\"a\"]}", "pod: expected an object"},
        {"{\"pod\":{\"spec\":{\"containers\":{}}},\"nodenames\":[]}",
         "pod.spec.containers: expected an array"},
        {"{\"pod\":{},\"nodenames\":[\"a\",3]}", "nodenames[1]"},
        {"not json", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp r = http(d.port, "POST", "/scheduler/filter", bad[i].body, auth_hdr);
        expect_error(&r, 400, "invalid_argument");
        if (!strstr(r.body, bad[i].want))
            fail_msg("%s: %s, want %s", bad[i].body, r.body, bad[i].want);
        free(r.body);
    }
    /* 100,000 node names: over max_nodes when small, over the body limit when not. */
    size_t cap = 100000 * 12 + 64, used;
    char *big = malloc(cap);
    used = (size_t)snprintf(big, cap, "{\"pod\":{},\"nodenames\":[");
    for (int i = 0; i < 100000; i++)
        used += (size_t)snprintf(big + used, cap - used, "%s\"%d\"", i ? "," : "", i % 100);
    snprintf(big + used, cap - used, "]}");
    resp r = http(d.port, "POST", "/scheduler/prioritize", big, auth_hdr);
    expect_error(&r, 400, "invalid_argument");
    assert_non_null(strstr(r.body, "nodenames: 100000 nodes, more than the 1000 allowed"));
    free(r.body);
    free(big);
    /* The token and the content type are required like on every write route. */
    const char *const no_token[] = {"Content-Type: application/json", NULL};
    r = http(d.port, "POST", "/scheduler/filter", "{}", no_token);
    assert_int_equal(r.status, 401);
    free(r.body);
    const char *const text[] = {"Content-Type: text/plain", "Authorization: Bearer " TOKEN, NULL};
    r = http(d.port, "POST", "/api/v1/cluster/report", "{}", text);
    assert_int_equal(r.status, 415);
    free(r.body);
    r = http(d.port, "POST", "/api/v1/cluster/report", "{\"node\":\"x\",\"gpus\":[{}]}", auth_hdr);
    expect_error(&r, 400, "invalid_argument");
    assert_non_null(strstr(r.body, "gpus[0].memory_total_mb: required"));
    free(r.body);
    /* Bind is off by default and says so. */
    json_t *b =
        post(d.port, "/scheduler/bind",
             "{\"podName\":\"a\",\"podNamespace\":\"ml\",\"podUID\":\"u\",\"node\":\"n\"}", 200);
    assert_non_null(strstr(json_string_value(json_object_get(b, "error")), "bind is off"));
    json_decref(b);
    assert_int_equal(daemon_stop(&d), 0);
}

/* kube-scheduler cannot send a bearer token: with cluster.extender_auth false the extender
 * routes answer without one while every other write route still needs it. The metrics port
 * answers a liveness /health for probes that can only reach it (the agent's pod). */
static void test_extender_without_token(void **state)
{
    (void)state;
    daemon_t d;
    const char *sx[] = {"--cluster", NULL};
    daemon_start(&d, "server:\n  load_generator: false\ncluster:\n  extender_auth: false\n", sx,
                 env_token);
    const char *const no_token[] = {"Content-Type: application/json", NULL};
    resp r = http(d.port, "POST", "/scheduler/filter", "{\"pod\":{},\"nodenames\":[]}", no_token);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http(d.port, "POST", "/scheduler/prioritize", "{\"pod\":{},\"nodenames\":[]}", no_token);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http(d.port, "POST", "/api/v1/cluster/report", "{\"node\":\"x\",\"gpus\":[]}", no_token);
    assert_int_equal(r.status, 401);
    free(r.body);
    r = http(d.mport, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"alive\"}");
    free(r.body);
    assert_int_equal(daemon_stop(&d), 0);
}

/* A long job outlives its reservation: once the TTL is over its agent's report (a process,
 * its memory) keeps the GPU from a whole-GPU pod. The test is the node's agent here, so the
 * report says exactly what runs. */
static void agent_report(int port, const char *gpu_json)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"node\":\"node-9\",\"gpus\":[%s]}", gpu_json);
    json_decref(post(port, "/api/v1/cluster/report", body, 200));
}

static void test_busy_after_ttl(void **state)
{
    (void)state;
    daemon_t d;
    const char *sx[] = {"--cluster", NULL};
    daemon_start(&d, "server:\n  load_generator: false\ncluster:\n  reservation_ttl: 1s\n", sx,
                 env_token);
    static const char idle[] = "{\"index\":0,\"name\":\"NVIDIA H100\",\"memory_total_mb\":81920,"
                               "\"memory_used_mb\":0}";
    static const char running[] =
        "{\"index\":0,\"name\":\"NVIDIA H100\",\"memory_total_mb\":81920,"
        "\"memory_used_mb\":70000,\"processes\":[{\"pid\":4242,\"name\":\"python\","
        "\"memory_used_mb\":70000}]}";
    static const char pod_fmt[] =
        "{\"pod\":{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ml\",\"uid\":\"%s\"},"
        "\"spec\":{\"containers\":[{\"name\":\"m\",\"resources\":{\"limits\":"
        "{\"nvidia.com/gpu\":\"1\"}}}]}},\"nodenames\":[\"node-9\"]}";
    char job[512], next[512];
    snprintf(job, sizeof(job), pod_fmt, "long-job", "long-job");
    snprintf(next, sizeof(next), pod_fmt, "next", "next");
    agent_report(d.port, idle);
    json_decref(post(d.port, "/scheduler/prioritize", job, 200));
    /* Held: the next pod waits. Then the TTL ends and the idle GPU is offered again. */
    json_t *r = post(d.port, "/scheduler/filter", next, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "failedNodes"), "node-9")),
        "insufficient GPUs: 0 free < 1 requested");
    json_decref(r);
    uint64_t deadline = now_ms() + 15000;
    for (;;) {
        r = post(d.port, "/scheduler/filter", next, 200);
        size_t offered = json_array_size(json_object_get(r, "nodenames"));
        json_decref(r);
        if (offered == 1)
            break;
        if (now_ms() > deadline)
            fail_msg("the reservation never ended");
        pause_ms(100);
    }
    /* The job runs on after its reservation: the agent's next report shows it. */
    agent_report(d.port, running);
    r = post(d.port, "/scheduler/filter", next, 200);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "failedNodes"), "node-9")),
        "insufficient GPUs: 0 free < 1 requested; gpu-0 busy (1 process, 70,000 MiB used, not "
        "by agentaflow)");
    json_decref(r);
    r = post(d.port, "/scheduler/prioritize", next, 200);
    assert_int_equal(score_of(r, "node-9"), 0);
    json_decref(r);
    /* The job ends: the GPU is free again. */
    agent_report(d.port, idle);
    r = post(d.port, "/scheduler/filter", next, 200);
    assert_int_equal(json_array_size(json_object_get(r, "nodenames")), 1);
    json_decref(r);
    assert_int_equal(daemon_stop(&d), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Bind against a stand-in Kubernetes API over HTTPS.                                        */

static void sh(const char *fmt, ...)
{
    char cmd[4096], full[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && (%s) >>openssl.log 2>&1", g_tmp, cmd);
    if (system(full) != 0)
        fail_msg("failed: %s (see %s/openssl.log)", cmd, g_tmp);
}

static void test_bind_kube_api(void **state)
{
    (void)state;
    if (system("openssl version >/dev/null 2>&1") != 0)
        skip();
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
       "-out ca.pem -days 2 -subj /CN=kube-ca -addext basicConstraints=critical,CA:TRUE "
       "-addext keyUsage=critical,keyCertSign,cRLSign && "
       "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > api.ext && "
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout api.key "
       "-out api.csr -subj /CN=kube-api && openssl x509 -req -in api.csr -CA ca.pem "
       "-CAkey ca.key -set_serial 7 -days 2 -out api.pem -extfile api.ext && "
       "mkdir -p sa && cp ca.pem sa/ca.crt && printf 'sa-token-123\\n' > sa/token");
    char cert[512], key[512];
    snprintf(cert, sizeof(cert), "%s/api.pem", g_tmp);
    snprintf(key, sizeof(key), "%s/api.key", g_tmp);
    af_test_http_receiver_opts ro = {cert, key, NULL};
    af_test_http_receiver *kube = NULL;
    assert_int_equal(af_test_http_receiver_start(&ro, &kube), 0);
    af_test_http_reply replies[] = {{200, NULL, "{}", 2, 0, 0, false},
                                    {201, NULL, "{}", 2, 0, 0, false}};
    af_test_http_receiver_script(kube, replies, 2);
    char extra[512];
    snprintf(extra, sizeof(extra),
             "  bind: true\n  kube_api_url: https://127.0.0.1:%u\n  service_account_dir: %s/sa\n",
             af_test_http_receiver_port(kube), g_tmp);
    fleet f;
    start_fleet(&f, "best_fit", extra);
    char *a = args_for("train-0", 0, 1000, 0);
    json_t *r = post(f.sched.port, "/scheduler/prioritize", a, 200);
    json_decref(r);
    free(a);
    json_t *b = post(f.sched.port, "/scheduler/bind",
                     "{\"podName\":\"train-0\",\"podNamespace\":\"ml\",\"podUID\":\"train-0\","
                     "\"node\":\"node-2\"}",
                     200);
    assert_string_equal(json_string_value(json_object_get(b, "error")), "");
    json_decref(b);
    assert_int_equal(af_test_http_receiver_wait(kube, 2, 5000), 2);
    const af_test_http_request *patch = af_test_http_receiver_request(kube, 0);
    assert_string_equal(patch->method, "PATCH");
    assert_string_equal(patch->path, "/api/v1/namespaces/ml/pods/train-0");
    assert_string_equal(af_test_http_request_header(patch, "Authorization"), "Bearer sa-token-123");
    assert_string_equal(af_test_http_request_header(patch, "Content-Type"),
                        "application/merge-patch+json");
    json_t *pj = json_loadb((const char *)patch->body, patch->body_len, 0, NULL);
    const char *gpu = json_string_value(json_object_get(
        json_object_get(json_object_get(pj, "metadata"), "annotations"), "agentaflow.io/gpu"));
    assert_non_null(gpu);
    assert_non_null(strstr(gpu, "node-2/gpu-"));
    json_decref(pj);
    const af_test_http_request *bind = af_test_http_receiver_request(kube, 1);
    assert_string_equal(bind->method, "POST");
    assert_string_equal(bind->path, "/api/v1/namespaces/ml/pods/train-0/binding");
    assert_string_equal(af_test_http_request_header(bind, "Authorization"), "Bearer sa-token-123");
    json_t *bj = json_loadb((const char *)bind->body, bind->body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(bj, "kind")), "Binding");
    assert_string_equal(json_string_value(json_object_get(json_object_get(bj, "target"), "name")),
                        "node-2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(bj, "metadata"), "name")),
                        "train-0");
    json_decref(bj);

    /* A CA that did not sign the API server's certificate: the bind fails, says why, and the
     * pod's GPU is released. */
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key "
       "-out sa/ca.crt -days 2 -subj /CN=other-ca");
    b = post(f.sched.port, "/scheduler/bind",
             "{\"podName\":\"train-1\",\"podNamespace\":\"ml\",\"podUID\":\"train-1\","
             "\"node\":\"node-2\"}",
             200);
    /* train-1 holds nothing (a pass-through pod): no annotation, but the Binding is still
     * created through the API, whose certificate this CA does not trust. */
    const char *err = json_string_value(json_object_get(b, "error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "Kubernetes API POST /api/v1/namespaces/ml/pods/train-1/binding"));
    json_decref(b);
    assert_int_equal(af_test_http_receiver_requests(kube), 2);
    stop_fleet(&f);
    af_test_http_receiver_stop(kube);
}

/* ---------------------------------------------------------------------------------------- */
/* Bind's Kubernetes calls are off the event loop.                                           */

#define BIND_TRACE "5a1fbe3a5e1d4c6b8f0e2d4c6b8a0f1e"

typedef struct bind_call {
    int port;
    resp r;
    atomic_bool done;
} bind_call;

static void *bind_thread(void *arg)
{
    bind_call *b = arg;
    static const char *const hdr[] = {"Content-Type: application/json",
                                      "Authorization: Bearer " TOKEN,
                                      "traceparent: 00-" BIND_TRACE "-1a2b3c4d5e6f7a8b-01", NULL};
    b->r = http(b->port, "POST", "/scheduler/bind",
                "{\"podName\":\"slow-bind\",\"podNamespace\":\"ml\",\"podUID\":\"slow-bind\","
                "\"node\":\"node-9\"}",
                hdr);
    atomic_store(&b->done, true);
    return NULL;
}

/* The gpu_scheduling.bind span of the bind above (polled: the trace store is fed in batches). */
static json_t *bind_span(int port)
{
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        resp q = http(port, "GET", "/api/v1/traces/" BIND_TRACE, NULL, NULL);
        json_t *j = q.status == 200 ? json_of(&q) : NULL;
        free(q.body);
        json_t *spans = json_object_get(j, "spans");
        for (size_t i = 0; i < json_array_size(spans); i++) {
            json_t *sp = json_array_get(spans, i);
            if (!strcmp(json_string_value(json_object_get(sp, "name")), "gpu_scheduling.bind")) {
                json_incref(sp);
                json_decref(j);
                return sp;
            }
        }
        json_decref(j);
        pause_ms(50);
    }
    fail_msg("no gpu_scheduling.bind span in trace " BIND_TRACE);
    return NULL;
}

/* A slow API server (the Binding answered after 2 s) holds a worker, not the event loop: on a
 * daemon with one loop, GET /health is answered while the bind still waits. Ordering only:
 * the health answer comes back before the bind answer. */
static void test_bind_off_the_loop(void **state)
{
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/sa-plain", g_tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "sa-token-456\n");
    af_test_http_receiver *kube = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &kube), 0);
    af_test_http_reply replies[] = {{200, NULL, "{}", 2, 0, 0, false},
                                    {201, NULL, "{}", 2, 0, 2000, false}};
    af_test_http_receiver_script(kube, replies, 2);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "server:\n  load_generator: false\n  event_loops: 1\ncluster:\n  bind: true\n"
             "  kube_api_url: http://127.0.0.1:%u\n  service_account_dir: %s\n",
             af_test_http_receiver_port(kube), dir);
    daemon_t d;
    const char *sx[] = {"--cluster", NULL};
    daemon_start(&d, cfg, sx, env_token);
    agent_report(d.port, "{\"index\":0,\"name\":\"NVIDIA H100\",\"memory_total_mb\":81920,"
                         "\"memory_used_mb\":0}");
    json_decref(post(d.port, "/scheduler/prioritize",
                     "{\"pod\":{\"metadata\":{\"name\":\"slow-bind\",\"namespace\":\"ml\","
                     "\"uid\":\"slow-bind\"},\"spec\":{\"containers\":[{\"name\":\"m\","
                     "\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"1\"}}}]}},"
                     "\"nodenames\":[\"node-9\"]}",
                     200));

    bind_call b = {.port = d.port};
    atomic_init(&b.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bind_thread, &b), 0);
    /* The PATCH is answered; the Binding's answer is being held back now. */
    assert_int_equal(af_test_http_receiver_wait(kube, 2, 10000), 2);
    resp h = http(d.port, "GET", "/health", NULL, NULL);
    bool bind_answered_first = atomic_load(&b.done);
    assert_int_equal(h.status, 200);
    free(h.body);
    assert_false(bind_answered_first);
    pthread_join(t, NULL);
    assert_int_equal(b.r.status, 200);
    json_t *br = json_of(&b.r);
    free(b.r.body);
    assert_string_equal(json_string_value(json_object_get(br, "error")), "");
    json_decref(br);
    const af_test_http_request *bind = af_test_http_receiver_request(kube, 1);
    assert_string_equal(bind->path, "/api/v1/namespaces/ml/pods/slow-bind/binding");

    /* The binding is kept, and the span covers the calls: it ends when the answer goes out,
     * so it lasts at least the API server's 2 s delay. */
    json_t *nodes = get_json(d.port, "/api/v1/cluster/nodes", 200);
    json_t *res = json_array_get(json_object_get(nodes, "reservations"), 0);
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "uid")), "slow-bind");
    assert_true(json_is_true(json_object_get(res, "bound")));
    json_decref(nodes);
    json_t *sp = bind_span(d.port);
    assert_true(json_number_value(json_object_get(sp, "duration_ms")) >= 2000.0);
    char *attrs = json_dumps(sp, 0);
    assert_non_null(strstr(attrs, "node-9/gpu-0"));
    free(attrs);
    json_decref(sp);
    assert_int_equal(daemon_stop(&d), 0);
    af_test_http_receiver_stop(kube);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cluster /path/to/agentaflow\n");
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-cluster-it-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_and_not_ready), cmocka_unit_test(test_prioritize_per_strategy),
        cmocka_unit_test(test_bad_extender_args),    cmocka_unit_test(test_extender_without_token),
        cmocka_unit_test(test_bind_kube_api),        cmocka_unit_test(test_busy_after_ttl),
        cmocka_unit_test(test_bind_off_the_loop),
    };
    int rc = cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
    curl_global_cleanup();
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", g_tmp);
    if (rc == 0 && system(rm) != 0)
        return 1;
    return rc;
}
