/*
 * serving/serving_json.c - the gateway's JSON renderers (af_serving_metrics_json), and for now
 * af_inference_response_clear (see its comment).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "serving/serving_int.h"
#include "util/buf.h"

typedef struct af__serving_model model;
typedef struct af__serving_instance instance;

static void json_str(af_buf *b, const char *s)
{
    af__buf_json_string(b, s, strlen(s));
}

int af_serving_metrics_json(af_serving *s, char **out)
{
    if (!s || !out)
        return -EINVAL;
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    uint64_t entries, hits, expired;
    af__cache_stats(s->cache, &entries, &hits, &expired);
    af_buf b;
    af__buf_init(&b);
    af__buf_printf(&b,
                   "{\"serving\":{\"total_models\":%u,\"pending_requests\":%u,\"in_flight\":%u,"
                   "\"max_batch_size\":%u,\"min_batch_size\":%u,\"max_wait_time_ms\":%u,"
                   "\"max_queue\":%u,\"requests\":%" PRIu64 ",\"batches\":%" PRIu64
                   ",\"overloaded\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"errors\":%" PRIu64 "},",
                   st.total_models, st.pending_requests, st.in_flight, s->opts.max_batch_size,
                   s->opts.min_batch_size, s->opts.max_wait_time_ms, s->opts.max_queue, st.requests,
                   st.batches, st.overloaded, st.timeouts, st.errors);
    af__buf_printf(&b,
                   "\"cache\":{\"total_entries\":%" PRIu64 ",\"total_hits\":%" PRIu64
                   ",\"expired_entries\":%" PRIu64 ",\"cache_ttl_sec\":%.3f,\"enabled\":%s},",
                   entries, hits, expired, s->opts.cache_ttl_ms / 1000.0,
                   s->opts.cache_ttl_ms ? "true" : "false");
    pthread_mutex_lock(&s->mu);
    af__buf_printf(&b,
                   "\"routing\":{\"total_instances\":%u,\"available_instances\":%u,"
                   "\"routing_strategy\":\"%s\",\"models_registered\":%zu,\"instances\":[",
                   st.total_instances, st.available_instances,
                   af_routing_strategy_name(s->opts.routing), s->n_models);
    for (size_t i = 0; i < s->n_insts; i++) {
        const instance *in = s->insts[i];
        const char *kind = af_model_backend_kind(in->backend);
        af__buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        json_str(&b, in->id);
        af__buf_puts(&b, ",\"model_id\":");
        json_str(&b, in->m->id);
        af__buf_puts(&b, ",\"endpoint\":");
        json_str(&b, in->endpoint);
        af__buf_puts(&b, ",\"backend\":");
        json_str(&b, kind);
        af__buf_printf(&b,
                       ",\"simulated\":%s,\"available\":%s,\"current_load\":%u,\"max_load\":%u,"
                       "\"average_latency_ms\":%.3f,\"served\":%" PRIu64 ",\"failures\":%" PRIu64
                       ",\"breaker\":\"%s\",\"consecutive_failures\":%u}",
                       strcmp(kind, "simulated") == 0 ? "true" : "false",
                       in->route.available ? "true" : "false", in->route.load, in->route.max_load,
                       in->route.avg_latency_ms, in->served, in->failures,
                       af__breaker_state_name(in->breaker.state), in->breaker.consecutive_failures);
    }
    af__buf_puts(&b, "]},\"models\":[");
    for (size_t i = 0; i < s->n_models; i++) {
        const model *m = s->models[i];
        af__buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        json_str(&b, m->id);
        af__buf_puts(&b, ",\"name\":");
        json_str(&b, m->name);
        af__buf_puts(&b, ",\"version\":");
        json_str(&b, m->version);
        af__buf_puts(&b, ",\"framework\":");
        json_str(&b, m->framework);
        af__buf_puts(&b, ",\"owned_by\":");
        json_str(&b, m->owned_by);
        af__buf_printf(&b,
                       ",\"memory_size_mb\":%" PRIu64 ",\"loaded_at_unix_ns\":%" PRIu64
                       ",\"pricing\":{\"input_per_million\":%.10g,\"output_per_million\":%.10g,"
                       "\"gpu_hourly\":%.10g,\"per_1k_tokens\":%.10g}}",
                       m->memory_mb, m->loaded_at_ns, m->input_per_million, m->output_per_million,
                       m->gpu_price_per_hour, m->price_per_1k_tokens);
    }
    pthread_mutex_unlock(&s->mu);
    af__buf_puts(&b, "]}");
    return af__buf_finish(&b, out);
}
