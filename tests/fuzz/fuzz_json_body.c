/*
 * libFuzzer target: JSON request bodies of the write routes (register GPU, submit workload,
 * record cost), run through the real handlers against a real scheduler and cost tracker
 * with no network: the first byte picks the route, the rest is the body. Every answer must
 * be a well-formed JSON document with a status the API documents.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static af_server *g_srv;

static void setup(void)
{
    g_srv = calloc(1, sizeof(*g_srv));
    pthread_mutex_init(&g_srv->met_mu, NULL);
    pthread_mutex_init(&g_srv->ws_mu, NULL);
    pthread_mutex_init(&g_srv->job_mu, NULL);
    af__metrics_init(g_srv);
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    af_gpu_scheduler_new(&so, &g_srv->o.scheduler);
    af_cost_tracker_opts co;
    af_cost_tracker_opts_init(&co);
    af_cost_tracker_new(&co, &g_srv->o.costs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_srv)
        setup();
    if (size < 1)
        return 0;
    static const char *paths[] = {"/api/v1/gpus", "/api/v1/workloads", "/api/v1/costs"};
    const char *path = paths[data[0] % 3];
    unsigned allowed;
    af__req rq;
    memset(&rq, 0, sizeof(rq));
    int r = af__route_match(path, AF__M_POST, &allowed, rq.params);
    if (r < 0)
        abort();
    char *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    rq.srv = g_srv;
    rq.method = AF__M_POST;
    rq.path = path;
    rq.body = body;
    rq.body_len = size - 1;
    af__resp rs;
    af__resp_init(&rs);
    af__routes[r].fn(&rq, &rs);
    if (rs.status < 200 || rs.status > 599)
        abort();
    json_t *j = json_loadb((const char *)rs.body.data + AF__RESP_HEADROOM,
                           rs.body.len - AF__RESP_HEADROOM, 0, NULL);
    if (!j)
        abort();
    json_decref(j);
    af__resp_free(&rs);
    free(body);
    /* The handlers' system_update broadcasts queue nothing: the server has no clients (and
     * no loops), so state stays bounded across runs. */
    return 0;
}
