/*
 * Handlers: trace list and trace lookup.
 * Split out of routes.c; the route table and matcher stay there (see routes_int.h).
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

int af__h_traces(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.traces, "trace store"))
        return 0;
    af_trace_query q;
    af_trace_query_init(&q);
    char service[128], op[128], arg[64];
    if (af__url_arg(rq, "service", service, sizeof(service)))
        q.service = service;
    if (af__url_arg(rq, "operation", op, sizeof(op)))
        q.operation = op;
    if (af__url_arg(rq, "min_duration_ms", arg, sizeof(arg))) {
        double ms;
        if (af__parse_decimal(arg, &ms) != 0 || ms > 1e9) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter min_duration_ms: a decimal number in [0, 1e9]");
            return 0;
        }
        q.min_duration_ns = (uint64_t)(ms * 1e6);
    }
    if (af__url_arg(rq, "error", arg, sizeof(arg))) {
        if (strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0)
            q.error = 1;
        else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0)
            q.error = 0;
        else {
            af__resp_error(rs, 400, "invalid_argument", "error must be true or false");
            return 0;
        }
    }
    if (af__url_arg(rq, "limit", arg, sizeof(arg))) {
        uint64_t n;
        if (af__parse_u64(arg, 1000, &n) != 0 || n == 0) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter limit: a decimal number in 1..1000");
            return 0;
        }
        q.limit = n;
    }
    char *j = NULL;
    af_trace_store_list_json(s->o.traces, &q, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

int af__h_trace(af__req *rq, af__resp *rs)
{
    if (!af__component_present(rs, rq->srv->o.traces, "trace store"))
        return 0;
    char *j = NULL;
    int rc = af_trace_store_get_json(rq->srv->o.traces, rq->params[0], &j);
    if (rc == -EINVAL)
        af__resp_error(rs, 400, "invalid_argument", "trace ids are 32 hex digits");
    else if (rc == AF_ENOTFOUND)
        af__resp_error(rs, 404, "not_found", "trace %s is not in the store", rq->params[0]);
    else if (rc != 0)
        af__resp_error(rs, 500, "internal", "out of memory");
    else
        af__resp_json_take(rs, 200, j);
    return 0;
}
