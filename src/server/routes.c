/*
 * The route table of the JSON API and its matcher; the handlers live in routes_<family>.c
 * (declared in routes_int.h). Every handler runs on the event loop and only touches in-memory
 * component state (each component has its own mutex); the one slow route, inference, queues a job
 * for the worker pool (server.c).
 *
 * Key names follow the original dashboard (docs/upstream-differences.md) wherever it had the
 * field; values come from the components, never from constants.
 */
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/limits.h"
#include "server/routes_cluster.h"
#include "server/server_int.h"
#include "util/timeutil.h"
#include "util/str.h"
#include "server/routes_int.h"

/* ---------------------------------------------------------------------------------------- */
/* The table. Patterns with the same shape are grouped so 405 can list every method.        */

/* The span names are string literals so the middleware never formats one per request. */
#define R(m, pattern, name, fn, write)                                                             \
    {                                                                                              \
        AF__M_##m, pattern, name, fn, write, "api_requests." #m " " pattern, "api_requests." name  \
    }
const af__route af__routes[] = {
    R(GET, "/health", "health", af__h_health, false),
    R(GET, "/ws", "websocket_plain", af__h_ws_plain, false),
    R(GET, "/api/v1/metrics", "dashboard_metrics", af__h_metrics, false),
    R(GET, "/api/v1/gpus", "list_gpus", af__h_gpus, false),
    R(POST, "/api/v1/gpus", "register_gpu", af__h_gpu_register, true),
    R(GET, "/api/v1/gpu/{id}/metrics", "gpu_metrics", af__h_gpu_metrics, false),
    R(GET, "/api/v1/gpu/{id}/processes", "gpu_processes", af__h_gpu_processes, false),
    R(GET, "/api/v1/gpu/{id}/history", "gpu_history", af__h_gpu_history, false),
    R(GET, "/api/v1/gpu/{id}/stats", "gpu_stats", af__h_gpu_stats, false),
    R(GET, "/api/v1/gpu/{id}/health", "gpu_health", af__h_gpu_health, false),
    R(GET, "/api/v1/system/stats", "system_stats", af__h_system_stats, false),
    R(GET, "/api/v1/system/overview", "system_overview", af__h_system_overview, false),
    R(GET, "/api/v1/system/status", "system_status", af__h_system_status, false),
    R(GET, "/api/v1/costs", "cost_summary", af__h_costs, false),
    R(POST, "/api/v1/costs", "record_cost", af__h_cost_record, true),
    R(GET, "/api/v1/costs/summary", "cost_breakdown", af__h_costs_summary, false),
    R(GET, "/api/v1/costs/forecast", "cost_forecast", af__h_costs_forecast, false),
    R(GET, "/api/v1/alerts", "list_alerts", af__h_alerts, false),
    R(GET, "/api/v1/alerts/summary", "alert_summary", af__h_alerts_summary, false),
    R(POST, "/api/v1/alerts/{id}/resolve", "resolve_alert", af__h_alert_resolve, true),
    R(GET, "/api/v1/performance", "performance", af__h_performance, false),
    R(GET, "/api/v1/performance/efficiency", "efficiency", af__h_performance_efficiency, false),
    R(GET, "/api/v1/workloads", "list_workloads", af__h_workloads, false),
    R(POST, "/api/v1/workloads", "submit_workload", af__h_workload_submit, true),
    R(GET, "/api/v1/workloads/{id}", "get_workload", af__h_workload_get, false),
    R(POST, "/api/v1/workloads/{id}/complete", "complete_workload", af__h_workload_complete, true),
    R(POST, "/api/v1/workloads/{id}/cancel", "cancel_workload", af__h_workload_cancel, true),
    R(GET, "/api/v1/models", "list_models", af__h_models, false),
    R(POST, "/api/v1/inference", "inference", af__h_inference, true),
    R(POST, "/v1/chat/completions", "openai_chat", af__h_oai_chat, true),
    R(POST, "/v1/completions", "openai_completions", af__h_oai_completions, true),
    R(GET, "/v1/models", "openai_models", af__h_oai_models, false),
    R(GET, "/api/v1/traces", "list_traces", af__h_traces, false),
    R(GET, "/api/v1/traces/{id}", "get_trace", af__h_trace, false),
    R(GET, "/api/v1/config", "config", af__h_config, false),
    R(POST, "/api/v1/demo/trigger/{gpu}/{pattern}", "demo_trigger", af__h_demo_trigger, true),
    R(POST, "/api/v1/cluster/report", "cluster_report", af__h_cluster_report, true),
    R(GET, "/api/v1/cluster/nodes", "cluster_nodes", af__h_cluster_nodes, false),
    R(POST, "/scheduler/filter", "scheduler_filter", af__h_scheduler_filter, AF__ROUTE_EXTENDER),
    R(POST, "/scheduler/prioritize", "scheduler_prioritize", af__h_scheduler_prioritize,
      AF__ROUTE_EXTENDER),
    R(POST, "/scheduler/bind", "scheduler_bind", af__h_scheduler_bind, AF__ROUTE_EXTENDER),
};
#undef R
const size_t af__nroutes = sizeof(af__routes) / sizeof(af__routes[0]);

/* Matches one pattern; fills params (a segment is at most AF_GPU_ID_MAX - 1 bytes). Literal
 * runs are compared with memcmp: every request walks the whole table. */
static bool pattern_match(const char *pat, const char *path, size_t path_len,
                          char params[AF__MAX_PARAMS][AF_GPU_ID_MAX])
{
    int np = 0;
    const char *pend = path + path_len;
    for (;;) {
        const char *brace = strchr(pat, '{');
        size_t lit = brace ? (size_t)(brace - pat) : strlen(pat);
        if ((size_t)(pend - path) < lit || memcmp(pat, path, lit) != 0)
            return false;
        pat += lit;
        path += lit;
        if (!brace)
            break;
        const char *pe = strchr(pat, '}');
        const char *se = memchr(path, '/', (size_t)(pend - path));
        size_t n = se ? (size_t)(se - path) : (size_t)(pend - path);
        if (!pe || n == 0 || n >= AF_GPU_ID_MAX || np >= AF__MAX_PARAMS)
            return false;
        memcpy(params[np], path, n);
        params[np++][n] = '\0';
        pat = pe + 1;
        path += n;
    }
    /* A trailing slash is the same route. */
    return path == pend || (path + 1 == pend && *path == '/');
}

int af__route_params_decode(int route, char params[AF__MAX_PARAMS][AF_GPU_ID_MAX], char *why,
                            size_t cap)
{
    const char *pat = af__routes[route].pattern;
    for (int np = 0; np < AF__MAX_PARAMS; np++) {
        const char *open = strchr(pat, '{'), *close = open ? strchr(open, '}') : NULL;
        if (!close)
            break;
        char out[AF_GPU_ID_MAX];
        int rc = af__pct_decode(params[np], strlen(params[np]), false, out, sizeof(out), NULL);
        if (rc != 0) {
            snprintf(why, cap, "path parameter %.*s: %s", (int)(close - open - 1), open + 1,
                     rc == -ENOSPC ? "too long" : "malformed percent-encoding (or %00)");
            return rc;
        }
        memcpy(params[np], out, sizeof(out));
        pat = close + 1;
    }
    return 0;
}

/* Each pattern's literal prefix (up to its first parameter) and whether it has parameters,
 * computed once: a request path is then rejected by most routes with a length compare. */
typedef struct route_shape {
    size_t prefix_len;
    bool has_params;
} route_shape;

static route_shape shapes[sizeof(af__routes) / sizeof(af__routes[0])];
static pthread_once_t shapes_once = PTHREAD_ONCE_INIT;

static void shapes_init(void)
{
    for (size_t i = 0; i < af__nroutes; i++) {
        const char *brace = strchr(af__routes[i].pattern, '{');
        shapes[i].has_params = brace != NULL;
        shapes[i].prefix_len =
            brace ? (size_t)(brace - af__routes[i].pattern) : strlen(af__routes[i].pattern);
    }
}

int af__route_match(const char *path, unsigned method, unsigned *allowed,
                    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX])
{
    pthread_once(&shapes_once, shapes_init);
    *allowed = 0;
    int found = -1;
    char tmp[AF__MAX_PARAMS][AF_GPU_ID_MAX] = {{0}}; /* unused parameters stay empty */
    size_t len = strlen(path);
    for (size_t i = 0; i < af__nroutes; i++) {
        const route_shape *sh = &shapes[i];
        const char *pat = af__routes[i].pattern;
        if (!sh->has_params) {
            /* Exact, or with one trailing slash. */
            if (!(len == sh->prefix_len || (len == sh->prefix_len + 1 && path[len - 1] == '/')) ||
                memcmp(path, pat, sh->prefix_len) != 0)
                continue;
        } else if (len <= sh->prefix_len || memcmp(path, pat, sh->prefix_len) != 0 ||
                   !pattern_match(pat, path, len, tmp)) {
            continue;
        }
        *allowed |= af__routes[i].methods;
        if (found < 0 && (af__routes[i].methods & method)) {
            found = (int)i;
            if (sh->has_params)
                memcpy(params, tmp, sizeof(tmp));
        }
    }
    if (*allowed & AF__M_GET)
        *allowed |= AF__M_HEAD;
    return found;
}
