/*
 * The LLM gateway's models and instances, from serving.models, or the embedded default when
 * the section is absent: the two simulated models the daemon always had, now streaming their
 * tokens at a visible pace so `make run` shows real streaming.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agentaflow/serving.h"
#include "app.h"

/* Embedded default pace of streamed answers: 30 ms per token (the first after the simulated
 * model's usual 2 ms). Blocking /api/v1/inference answers keep the simulated model's own
 * latency (2 ms + 50 us a token). */
#define DEFAULT_TOKEN_MS 30
/* Calls in flight per embedded instance. A stream holds its slot for its whole answer (a
 * couple of seconds at this pace), so this is sized for streams: model-gpt's two instances
 * hold 1024 at once. */
#define DEFAULT_MAX_LOAD 512

/* first_ms: the wait before the first token (and the base latency of a blocking answer);
 * UINT32_MAX = the simulated model's default. token_ms: between streamed tokens. */
static int add_sim(af_serving *s, const char *model, const char *id, const char *endpoint,
                   uint32_t first_ms, uint32_t token_ms, uint32_t max_load)
{
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    if (first_ms != UINT32_MAX)
        so.base_latency_us = first_ms * 1000u;
    so.stream_token_us = token_ms * 1000u;
    af_model_backend *b = NULL;
    int rc = af_sim_backend_new(&so, &b);
    af_instance_opts io = {.id = id, .endpoint = endpoint, .max_load = max_load};
    return rc ? rc : af_serving_add_instance(s, model, &io, b);
}

static int add_default(af_serving *s, FILE *err)
{
    static const af_model_info models[] = {
        {.id = "model-gpt",
         .name = "GPT-3.5-Turbo",
         .version = "1.0",
         .framework = "PyTorch",
         .memory_mb = 12288,
         .price_per_1k_tokens = 0.002,
         .gpu_price_per_hour = 3.06},
        {.id = "model-bert",
         .name = "BERT-Large",
         .version = "2.1",
         .framework = "TensorFlow",
         .memory_mb = 4096,
         .price_per_1k_tokens = 0.0005,
         .gpu_price_per_hour = 0.526},
    };
    static const struct {
        const char *id, *model, *endpoint;
    } inst[] = {
        {"instance-1", "model-gpt", "sim://instance-1"},
        {"instance-2", "model-gpt", "sim://instance-2"},
        {"instance-3", "model-bert", "sim://instance-3"},
    };
    char e[256] = "";
    for (size_t i = 0; i < 2; i++) {
        int rc = af_serving_register_model(s, NULL, &models[i], e, sizeof(e));
        if (rc != 0) {
            fprintf(err, "agentaflow: model %s: %s\n", models[i].id, e);
            return rc;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        int rc = add_sim(s, inst[i].model, inst[i].id, inst[i].endpoint, UINT32_MAX,
                         DEFAULT_TOKEN_MS, DEFAULT_MAX_LOAD);
        if (rc != 0) {
            fprintf(err, "agentaflow: instance %s: %s\n", inst[i].id, af_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static int add_backend(af_serving *s, const af_config_model *m, size_t j)
{
    const af_config_backend *b = &m->backends[j];
    char id[64];
    if (b->id)
        snprintf(id, sizeof(id), "%s", b->id);
    else
        snprintf(id, sizeof(id), "%.40s-%u", m->id, (unsigned)(j % 100));
    if (!b->url) {
        char endpoint[80];
        snprintf(endpoint, sizeof(endpoint), "sim://%s", id);
        return add_sim(s, m->id, id, endpoint, b->first_token_ms, b->token_interval_ms,
                       b->max_load);
    }
    af_http_backend_opts ho;
    af_http_backend_opts_init(&ho);
    ho.base_url = b->url;
    ho.model = b->model;
    ho.api_key = b->api_key;
    ho.provider = b->provider;
    ho.connect_timeout_ms = b->connect_timeout_ms;
    ho.timeout_ms = b->timeout_ms;
    af_model_backend *be = NULL;
    int rc = af_http_backend_new(&ho, &be);
    af_instance_opts io = {.id = id, .endpoint = b->url, .max_load = b->max_load};
    return rc ? rc : af_serving_add_instance(s, m->id, &io, be);
}

int app_add_models(af_serving *s, const af_serving_config *sc, FILE *err)
{
    if (sc->n_models == 0)
        return add_default(s, err);
    char e[256] = "";
    for (size_t i = 0; i < sc->n_models; i++) {
        const af_config_model *m = &sc->models[i];
        af_model_info mi = {.id = m->id,
                            .name = m->name ? m->name : m->id,
                            .owned_by = m->owned_by,
                            .default_max_tokens = m->max_tokens,
                            .input_usd_per_million = m->input_per_million,
                            .output_usd_per_million = m->output_per_million,
                            .gpu_price_per_hour = m->gpu_hourly};
        int rc = af_serving_register_model(s, NULL, &mi, e, sizeof(e));
        if (rc != 0) {
            fprintf(err, "agentaflow: serving.models[%zu] %s: %s\n", i, m->id, e);
            return rc;
        }
        for (size_t j = 0; j < m->n_backends; j++) {
            if ((rc = add_backend(s, m, j)) != 0) {
                fprintf(err, "agentaflow: serving.models[%zu].backends[%zu]: %s\n", i, j,
                        rc == -EEXIST ? "instance id already used" : af_strerror(rc));
                return rc;
            }
        }
    }
    return 0;
}
