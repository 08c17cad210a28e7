/*
 * The OpenTelemetry GenAI metrics of the OpenAI front door, under their semantic-convention
 * names as Prometheus writes them (no agentaflow_ prefix, so dashboards made for any GenAI
 * service read them):
 *
 *   gen_ai_client_token_usage                  histogram {token}; gen_ai_token_type input|output
 *   gen_ai_client_operation_duration_seconds   histogram, the whole call
 *   gen_ai_server_time_to_first_token_seconds  histogram, streamed calls only
 *
 * each with gen_ai_operation_name (chat | text_completion) and gen_ai_request_model, buckets
 * as the conventions advise, and (OpenMetrics) the daemon's SERVER span as exemplar. A failed
 * call is observed in the duration family only, with the conventions' error_type label
 * (timeout, backend_unavailable, ...); tokens and time to first token count successes.
 *
 * Rows are (operation, model, error type) triples under met_mu; past AF__MAX_GENAI_ROWS (or
 * server.max_label_values) new models share the row of model "other", so request-chosen
 * model names cannot multiply the series.
 */
#include <string.h>

#include "server/metrics_int.h"
#include "server/server_int.h"
#include "util/str.h"

static const double token_bounds[] = {1,     4,     16,     64,      256,     1024,     4096,
                                      16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
static const double duration_bounds[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                         1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                     0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
#define NB(a) (sizeof(a) / sizeof((a)[0]))

static af__genai_row *row_find(af_server *s, const char *op, const char *model, const char *err)
{
    for (size_t i = 0; i < s->n_genai; i++)
        if (strcmp(s->genai[i].op, op) == 0 && strcmp(s->genai[i].model, model) == 0 &&
            strcmp(s->genai[i].error_type, err) == 0)
            return &s->genai[i];
    return NULL;
}

/* Caller holds met_mu. */
static af__genai_row *row_slot(af_server *s, const char *op, const char *model, const char *err)
{
    af__genai_row *r = row_find(s, op, model, err);
    if (r)
        return r;
    size_t cap = AF__MAX_GENAI_ROWS - 2; /* a row per operation stays for "other" */
    if (s->o.max_label_values && s->o.max_label_values < cap)
        cap = s->o.max_label_values;
    if (s->n_genai >= cap) {
        model = "other";
        if ((r = row_find(s, op, model, err)) || s->n_genai >= AF__MAX_GENAI_ROWS)
            return r;
    }
    r = &s->genai[s->n_genai++];
    memset(r, 0, sizeof(*r));
    af__strlcpy(r->op, op, sizeof(r->op));
    af__strlcpy(r->model, model, sizeof(r->model));
    af__strlcpy(r->error_type, err, sizeof(r->error_type));
    af__hist_init(&r->input_tokens, token_bounds, NB(token_bounds));
    af__hist_init(&r->output_tokens, token_bounds, NB(token_bounds));
    af__hist_init(&r->duration, duration_bounds, NB(duration_bounds));
    af__hist_init(&r->ttft, ttft_bounds, NB(ttft_bounds));
    return r;
}

void af__metrics_genai(af_server *s, const char *operation, const char *model, int rc,
                       const af_chat_result *r, bool streamed, const af_span_context *sc)
{
    if (!r)
        return;
    pthread_mutex_lock(&s->met_mu);
    if (rc != 0) {
        af__genai_row *row =
            row_slot(s, operation, model, r->error_type[0] ? r->error_type : "error");
        if (row)
            af__hist_observe(&row->duration, (double)r->duration_ns / 1e9, sc);
        pthread_mutex_unlock(&s->met_mu);
        return;
    }
    af__genai_row *row = row_slot(s, operation, model, "");
    if (row) {
        af__hist_observe(&row->input_tokens, (double)r->input_tokens, sc);
        af__hist_observe(&row->output_tokens, (double)r->output_tokens, sc);
        af__hist_observe(&row->duration, (double)r->duration_ns / 1e9, sc);
        if (streamed && r->time_to_first_token_ns)
            af__hist_observe(&row->ttft, (double)r->time_to_first_token_ns / 1e9, sc);
    }
    pthread_mutex_unlock(&s->met_mu);
}

void af__metrics_render_genai(af_server *s, af__expo *e)
{
    af__expo ge = *e;
    ge.bare = true;
    pthread_mutex_lock(&s->met_mu);
    if (s->n_genai) {
        af__expo_family(&ge, "gen_ai_client_token_usage", "histogram",
                        "Tokens used per call of the OpenAI front door (input and output).");
        for (size_t i = 0; i < s->n_genai; i++) {
            const af__genai_row *r = &s->genai[i];
            if (r->error_type[0])
                continue;
            af__expo_histogram(&ge, "gen_ai_client_token_usage",
                               LABELS("gen_ai_operation_name", r->op, "gen_ai_request_model",
                                      r->model, "gen_ai_token_type", "input"),
                               &r->input_tokens);
            af__expo_histogram(&ge, "gen_ai_client_token_usage",
                               LABELS("gen_ai_operation_name", r->op, "gen_ai_request_model",
                                      r->model, "gen_ai_token_type", "output"),
                               &r->output_tokens);
        }
        af__expo_family(&ge, "gen_ai_client_operation_duration_seconds", "histogram",
                        "Duration of a call of the OpenAI front door, request to last token.");
        for (size_t i = 0; i < s->n_genai; i++) {
            const af__genai_row *r = &s->genai[i];
            if (r->error_type[0])
                af__expo_histogram(&ge, "gen_ai_client_operation_duration_seconds",
                                   LABELS("gen_ai_operation_name", r->op, "gen_ai_request_model",
                                          r->model, "error_type", r->error_type),
                                   &r->duration);
            else
                af__expo_histogram(
                    &ge, "gen_ai_client_operation_duration_seconds",
                    LABELS("gen_ai_operation_name", r->op, "gen_ai_request_model", r->model),
                    &r->duration);
        }
        af__expo_family(&ge, "gen_ai_server_time_to_first_token_seconds", "histogram",
                        "Time from a streamed request to its first token.");
        for (size_t i = 0; i < s->n_genai; i++)
            if (!s->genai[i].error_type[0])
                af__expo_histogram(&ge, "gen_ai_server_time_to_first_token_seconds",
                                   LABELS("gen_ai_operation_name", s->genai[i].op,
                                          "gen_ai_request_model", s->genai[i].model),
                                   &s->genai[i].ttft);
    }
    pthread_mutex_unlock(&s->met_mu);
}
