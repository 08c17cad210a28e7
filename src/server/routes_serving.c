/*
 * Handlers: models and inference.
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

int af__h_models(af__req *rq, af__resp *rs)
{
    if (!af__component_present(rs, rq->srv->o.serving, "model-serving gateway"))
        return 0;
    char *j = NULL;
    af_serving_metrics_json(rq->srv->o.serving, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

int af__h_inference(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.serving, "model-serving gateway"))
        return 0;
    json_t *o = af__parse_object(rq, rs);
    if (!o)
        return 0;
    const char *model = NULL, *input = NULL, *id = NULL;
    double max_tokens = 0, timeout = 0;
    int rc = 0;
    if (af__get_field(o, AF__F_INFER_MODEL_ID, &model, rs) && af__get_str(o, "input", &input, rs) &&
        af__get_field(o, AF__F_INFER_REQUEST_ID, &id, rs) &&
        af__get_num(o, "max_tokens", 0, 1e6, &max_tokens, rs) &&
        af__get_num(o, "timeout_ms", 0, 600000, &timeout, rs)) {
        if (!model && !af__get_field_as(o, "model", AF__F_INFER_MODEL_ID, &model, rs))
            goto out;
        if (!input && !af__get_str(o, "prompt", &input, rs))
            goto out;
        if (!model || !*model || !input || !*input) {
            af__resp_error(rs, 400, "invalid_argument", "\"model_id\" and \"input\" are required");
            goto out;
        }
        char err[160];
        if (af__input_check(strlen(input), s->o.max_input_tokens, err, sizeof(err)) != 0) {
            af__resp_error(rs, 400, "limit_exceeded", "%s", err);
            goto out;
        }
        af__job *j = calloc(1, sizeof(*j));
        if (!j || !(j->model_id = af__strdup(model)) || !(j->input = af__strdup(input)) ||
            (id && !(j->request_id = af__strdup(id)))) {
            if (j) {
                free(j->model_id);
                free(j->input);
                free(j);
            }
            af__resp_error(rs, 500, "internal", "out of memory");
            goto out;
        }
        j->max_tokens = (uint32_t)max_tokens;
        /* The gateway gives up at the server's deadline too, so the worker is not held past
         * the moment the client was answered 504. */
        uint32_t limit = s->o.inference_timeout_ms;
        j->timeout_ms = timeout > 0 && (!limit || timeout < limit) ? (uint32_t)timeout : limit;
        j->parent = rq->span_ctx;
        rc = af__server_submit_job(rq, rs, j);
    }
out:
    json_decref(o);
    return rc;
}
