/*
 * The daemon's settings (`server:` section, environment) and the assembly of the platform.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "agentaflow/log.h"
#include "app.h"

void app_settings_init(app_settings *s)
{
    memset(s, 0, sizeof(*s));
    af_server_opts o;
    af_server_opts_init(&o);
    snprintf(s->bind_address, sizeof(s->bind_address), "%s", o.bind_address);
    s->port = o.port;
    s->metrics_port = o.metrics_port;
    s->ws_push_interval_ms = o.ws_push_interval_ms;
    s->max_ws_clients = o.max_ws_clients;
    s->ws_queue_depth = o.ws_queue_depth;
    s->body_limit = o.body_limit;
    s->max_inflight = o.max_inflight;
    s->workers = o.workers;
    s->event_loops = o.event_loops;
    s->trace_store_spans = 8192;
    s->load_generator = true;
    snprintf(s->gpu_backend, sizeof(s->gpu_backend), "auto");
    s->simulated_gpus = 4;
    snprintf(s->title, sizeof(s->title), "%s", o.title);
    s->trace_store_bytes = 64ull << 20;
    s->inference_timeout_ms = o.inference_timeout_ms;
    s->max_input_tokens = o.max_input_tokens;
    s->max_label_values = o.max_label_values;
}

static const char *set_path(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return "the path is too long";
    snprintf(dst, cap, "%s", v);
    return NULL;
}

static bool parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-' || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = false;
        return true;
    }
    return false;
}

/* Sets one key; returns NULL or the reason it was rejected. */
static const char *set_key(app_settings *s, const char *k, const char *v)
{
    uint64_t n;
    uint32_t ms;
    if (!strcmp(k, "bind_address")) {
        if (!*v || strlen(v) >= sizeof(s->bind_address))
            return "expected an IP address";
        snprintf(s->bind_address, sizeof(s->bind_address), "%s", v);
    } else if (!strcmp(k, "port") || !strcmp(k, "metrics_port")) {
        if (!strcmp(k, "metrics_port") && !strcmp(v, "-1")) {
            s->metrics_port = -1;
            return NULL;
        }
        if (!parse_u64(v, 0, 65535, &n))
            return "expected a port number 0-65535 (0 = any free port)";
        *(strcmp(k, "port") ? &s->metrics_port : &s->port) = (int)n;
    } else if (!strcmp(k, "auth_token")) {
        if (strlen(v) >= sizeof(s->auth_token))
            return "the token is too long (255 bytes at most)";
        snprintf(s->auth_token, sizeof(s->auth_token), "%s", v);
    } else if (!strcmp(k, "ws_push_interval")) {
        if (af_config_parse_duration(v, &ms) != 0 || ms < 100 || ms > 3600000)
            return "expected a duration between 100ms and 1h";
        s->ws_push_interval_ms = ms;
    } else if (!strcmp(k, "max_ws_clients")) {
        if (!parse_u64(v, 1, 100000, &n))
            return "expected an integer 1-100000";
        s->max_ws_clients = (uint32_t)n;
    } else if (!strcmp(k, "ws_queue_depth")) {
        if (!parse_u64(v, 1, 1024, &n))
            return "expected an integer 1-1024";
        s->ws_queue_depth = (uint32_t)n;
    } else if (!strcmp(k, "body_limit")) {
        if (!parse_u64(v, 1024, 64ull << 20, &n))
            return "expected a byte count 1024-67108864";
        s->body_limit = n;
    } else if (!strcmp(k, "max_inflight")) {
        if (!parse_u64(v, 1, 100000, &n))
            return "expected an integer 1-100000";
        s->max_inflight = (uint32_t)n;
    } else if (!strcmp(k, "workers")) {
        if (!parse_u64(v, 1, 64, &n))
            return "expected an integer 1-64";
        s->workers = (uint32_t)n;
    } else if (!strcmp(k, "event_loops")) {
        if (!parse_u64(v, 0, 64, &n))
            return "expected an integer 0-64 (0 = one per CPU)";
        s->event_loops = (uint32_t)n;
    } else if (!strcmp(k, "trace_store_spans")) {
        if (!parse_u64(v, 16, 1000000, &n))
            return "expected an integer 16-1000000";
        s->trace_store_spans = (uint32_t)n;
    } else if (!strcmp(k, "load_generator")) {
        if (!parse_bool(v, &s->load_generator))
            return "expected true or false";
    } else if (!strcmp(k, "gpu_backend")) {
        if (strcmp(v, "auto") && strcmp(v, "nvml") && strcmp(v, "simulated"))
            return "expected auto, nvml or simulated";
        snprintf(s->gpu_backend, sizeof(s->gpu_backend), "%s", v);
    } else if (!strcmp(k, "simulated_gpus")) {
        if (!parse_u64(v, 1, 64, &n))
            return "expected an integer 1-64";
        s->simulated_gpus = (uint32_t)n;
    } else if (!strcmp(k, "title")) {
        if (strlen(v) >= sizeof(s->title))
            return "the title is too long";
        snprintf(s->title, sizeof(s->title), "%s", v);
    } else if (!strcmp(k, "trace_store_bytes")) {
        if (!parse_u64(v, 1u << 20, 64ull << 30, &n))
            return "expected a byte count 1048576-68719476736";
        s->trace_store_bytes = n;
    } else if (!strcmp(k, "allowed_hosts")) {
        if (s->n_allowed_hosts == sizeof(s->allowed_hosts) / sizeof(s->allowed_hosts[0]))
            return "at most 16 allowed hosts";
        if (!*v || strlen(v) >= sizeof(s->allowed_hosts[0]))
            return "expected a host name, optionally with :port";
        snprintf(s->allowed_hosts[s->n_allowed_hosts++], sizeof(s->allowed_hosts[0]), "%s", v);
    } else if (!strcmp(k, "auth.read")) {
        if (!parse_bool(v, &s->auth_read))
            return "expected true or false";
    } else if (!strcmp(k, "tls.cert_file")) {
        return set_path(s->tls_cert_file, sizeof(s->tls_cert_file), v);
    } else if (!strcmp(k, "tls.key_file")) {
        return set_path(s->tls_key_file, sizeof(s->tls_key_file), v);
    } else if (!strcmp(k, "tls.client_ca_file")) {
        return set_path(s->tls_client_ca_file, sizeof(s->tls_client_ca_file), v);
    } else if (!strcmp(k, "inference_timeout")) {
        if (af_config_parse_duration(v, &ms) != 0 || ms < 100 || ms > 3600000)
            return "expected a duration between 100ms and 1h";
        s->inference_timeout_ms = ms;
    } else if (!strcmp(k, "max_input_tokens")) {
        if (!parse_u64(v, 1, 1000000, &n))
            return "expected an integer 1-1000000";
        s->max_input_tokens = (uint32_t)n;
    } else if (!strcmp(k, "max_label_values")) {
        if (!parse_u64(v, 10, 100000, &n))
            return "expected an integer 10-100000";
        s->max_label_values = (uint32_t)n;
    } else {
        return "unknown key";
    }
    return NULL;
}

static int report(const char *path, const yaml_node_t *at, const char *key, const char *why,
                  FILE *err)
{
    /* Never echo the value: it may be the token. */
    fprintf(err, "%s:%zu:%zu: server.%s: %s\n", path, at->start_mark.line + 1,
            at->start_mark.column + 1, key, why);
    return 1;
}

/* One mapping of the server section; prefix is "" or "tls." for a nested one. */
static int load_section(app_settings *s, yaml_document_t *doc, yaml_node_t *map, const char *prefix,
                        const char *path, FILE *err)
{
    int errors = 0;
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < map->data.mapping.pairs.top;
         q++) {
        yaml_node_t *kk = yaml_document_get_node(doc, q->key);
        yaml_node_t *vv = yaml_document_get_node(doc, q->value);
        if (!kk || kk->type != YAML_SCALAR_NODE || !vv) {
            fprintf(err, "%s:%zu:%zu: server: expected key: value pairs\n", path,
                    (kk ? kk->start_mark.line : 0) + 1, (kk ? kk->start_mark.column : 0) + 1);
            errors++;
            continue;
        }
        char key[128];
        snprintf(key, sizeof(key), "%s%s", prefix, (const char *)kk->data.scalar.value);
        const char *why = NULL;
        if (vv->type == YAML_MAPPING_NODE && !*prefix) {
            char sub[160];
            snprintf(sub, sizeof(sub), "%s.", key);
            errors += load_section(s, doc, vv, sub, path, err);
            continue;
        }
        if (vv->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = vv->data.sequence.items.start;
                 it < vv->data.sequence.items.top; it++) {
                yaml_node_t *e = yaml_document_get_node(doc, *it);
                why = e && e->type == YAML_SCALAR_NODE
                          ? set_key(s, key, (const char *)e->data.scalar.value)
                          : "expected a list of strings";
                if (why)
                    errors += report(path, e ? e : vv, key, why, err);
            }
            continue;
        }
        why = vv->type == YAML_SCALAR_NODE ? set_key(s, key, (const char *)vv->data.scalar.value)
                                           : "expected a value";
        if (why)
            errors += report(path, vv, key, why, err);
    }
    return errors;
}

int app_settings_load(app_settings *s, const char *path, FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    yaml_parser_t p;
    yaml_document_t doc;
    int errors = 0;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &doc)) {
        /* The tracing loader reports YAML syntax errors with their position already. */
        yaml_parser_delete(&p);
        fclose(f);
        return 0;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
             pr < root->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
            yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
            if (!k || k->type != YAML_SCALAR_NODE ||
                strcmp((const char *)k->data.scalar.value, "server") != 0)
                continue;
            if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
                continue; /* "server:" with nothing under it */
            if (v->type != YAML_MAPPING_NODE) {
                fprintf(err, "%s:%zu:%zu: server: expected a mapping\n", path,
                        v->start_mark.line + 1, v->start_mark.column + 1);
                errors++;
                continue;
            }
            errors += load_section(s, &doc, v, "", path, err);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    fclose(f);
    return errors;
}

int app_settings_apply_env(app_settings *s, FILE *err)
{
    static const struct {
        const char *env, *key;
    } m[] = {
        {"AGENTAFLOW_AUTH_TOKEN", "auth_token"},
        {"AGENTAFLOW_BIND_ADDRESS", "bind_address"},
        {"AGENTAFLOW_PORT", "port"},
        {"AGENTAFLOW_METRICS_PORT", "metrics_port"},
    };
    int errors = 0;
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        const char *v = getenv(m[i].env);
        if (!v || !*v)
            continue;
        const char *why = set_key(s, m[i].key, v);
        if (why) {
            fprintf(err, "%s: %s\n", m[i].env, why);
            errors++;
        }
    }
    return errors;
}

void app_settings_print(const app_settings *s, FILE *out)
{
    char d[32];
    af_config_format_duration(s->ws_push_interval_ms, d, sizeof(d));
    fprintf(out,
            "server.bind_address = %s\nserver.port = %d\nserver.metrics_port = %d\n"
            "server.auth_token = %s\nserver.ws_push_interval = %s\nserver.max_ws_clients = %u\n"
            "server.ws_queue_depth = %u\nserver.body_limit = %llu\nserver.max_inflight = %u\n"
            "server.workers = %u\nserver.event_loops = %u\nserver.trace_store_spans = "
            "%u\nserver.load_generator = %s\n"
            "server.gpu_backend = %s\nserver.simulated_gpus = %u\nserver.title = %s\n",
            s->bind_address, s->port, s->metrics_port, s->auth_token[0] ? "[redacted]" : "\"\"", d,
            s->max_ws_clients, s->ws_queue_depth, (unsigned long long)s->body_limit,
            s->max_inflight, s->workers, s->event_loops, s->trace_store_spans,
            s->load_generator ? "true" : "false", s->gpu_backend, s->simulated_gpus, s->title);
    af_config_format_duration(s->inference_timeout_ms, d, sizeof(d));
    fprintf(out,
            "server.trace_store_bytes = %llu\nserver.auth.read = %s\nserver.tls.cert_file = %s\n"
            "server.tls.key_file = %s\nserver.tls.client_ca_file = %s\n"
            "server.inference_timeout = %s\nserver.max_input_tokens = %u\n"
            "server.max_label_values = %u\nserver.allowed_hosts = [",
            (unsigned long long)s->trace_store_bytes, s->auth_read ? "true" : "false",
            s->tls_cert_file, s->tls_key_file, s->tls_client_ca_file, d, s->max_input_tokens,
            s->max_label_values);
    for (size_t i = 0; i < s->n_allowed_hosts; i++)
        fprintf(out, "%s%s", i ? ", " : "", s->allowed_hosts[i]);
    fprintf(out, "]\n");
}

static bool about_server(const af_config_diag_entry *e)
{
    return e->key && (strcmp(e->key, "server") == 0 || strncmp(e->key, "server.", 7) == 0);
}

int app_load_config(const char *path, af_tracing_config *cfg, app_settings *st, FILE *err)
{
    int errors = 0;
    af_config_diag d;
    af_config_diag_init(&d);
    app_settings_init(st);
    if (af_tracing_config_init(cfg) != 0) {
        fprintf(err, "agentaflow: out of memory\n");
        return 1;
    }
    if (path) {
        int rc = af_tracing_config_load(path, cfg, &d);
        if (rc != 0 && rc != AF_EPARSE) {
            fprintf(err, "%s: cannot read: %s\n", path, af_strerror(rc));
            af_config_diag_free(&d);
            return 1;
        }
        int n = app_settings_load(st, path, err);
        errors += n > 0 ? n : 0;
    }
    af_tracing_config_apply_env(cfg, &d);
    errors += app_settings_apply_env(st, err);
    for (size_t i = 0; i < d.n_entries; i++) {
        const af_config_diag_entry *e = &d.entries[i];
        if (about_server(e))
            continue;
        fprintf(err, "%s: %s\n", af_diag_severity_name(e->severity), e->message);
        errors += e->severity == AF_DIAG_ERROR;
    }
    if (d.suppressed)
        fprintf(err, "(%zu more diagnostics not shown)\n", d.suppressed);
    if (d.n_errors > (size_t)0 && errors == 0)
        errors = (int)d.n_errors;
    af_config_diag_free(&d);
    return errors ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Platform.                                                                                 */

static int add_models(app_platform *p, FILE *err)
{
    static const af_model_info models[] = {
        {"model-gpt", "GPT-3.5-Turbo", "1.0", "PyTorch", 12288, 0.002, 3.06},
        {"model-bert", "BERT-Large", "2.1", "TensorFlow", 4096, 0.0005, 0.526},
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
        int rc = af_serving_register_model(p->serving, NULL, &models[i], e, sizeof(e));
        if (rc != 0) {
            fprintf(err, "agentaflow: model %s: %s\n", models[i].id, e);
            return rc;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        af_sim_backend_opts so;
        af_sim_backend_opts_init(&so);
        af_model_backend *b = NULL;
        int rc = af_sim_backend_new(&so, &b);
        af_instance_opts io = {.id = inst[i].id, .endpoint = inst[i].endpoint, .max_load = 64};
        if (rc == 0)
            rc = af_serving_add_instance(p->serving, inst[i].model, &io, b);
        if (rc != 0) {
            fprintf(err, "agentaflow: instance %s: %s\n", inst[i].id, af_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int app_platform_start(app_platform *p, const af_tracing_config *cfg, const app_settings *st,
                       FILE *err)
{
    memset(p, 0, sizeof(*p));
    char e[512] = "";
    int rc = af_tracing_new(cfg, &p->tracing, e, sizeof(e));
    if (rc != 0) {
        fprintf(err, "agentaflow: tracing: %s\n", e[0] ? e : af_strerror(rc));
        return rc;
    }
    if (af_tracing_tracer(p->tracing)) {
        af_exporter *ex = NULL;
        rc = af_trace_store_new(st->trace_store_spans, &ex, &p->traces);
        if (rc == 0) {
            /* A short delay so the trace viewer shows a request moments after it ends. */
            af_batch_processor_opts bo;
            af_batch_processor_opts_init(&bo);
            bo.schedule_delay_ms = 200;
            bo.max_queue_size = 8192;
            rc = af_tracing_add_exporter(p->tracing, ex, &bo);
        }
        if (rc != 0) {
            fprintf(err, "agentaflow: trace store: %s\n", af_strerror(rc));
            return rc;
        }
    }
    af_gpu_collector_opts co;
    af_gpu_collector_opts_init(&co);
    co.backend = !strcmp(st->gpu_backend, "nvml")        ? AF_GPU_BACKEND_NVML
                 : !strcmp(st->gpu_backend, "simulated") ? AF_GPU_BACKEND_SIMULATED
                                                         : AF_GPU_BACKEND_AUTO;
    co.sim.gpus = st->simulated_gpus;
    co.sim.seed = (uint64_t)af_now_ns();
    co.tracing.tracing = p->tracing;
    rc = af_gpu_collector_new(&co, &p->collector, e, sizeof(e));
    if (rc != 0) {
        fprintf(err, "agentaflow: GPU metrics: %s\n", e[0] ? e : af_strerror(rc));
        return rc;
    }
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    so.tracing.tracing = p->tracing;
    if ((rc = af_gpu_scheduler_new(&so, &p->scheduler)) != 0) {
        fprintf(err, "agentaflow: scheduler: %s\n", af_strerror(rc));
        return rc;
    }
    /* One synchronous cycle so the scheduler knows the GPUs before anything is submitted. */
    af_gpu_collector_collect_now(p->collector);
    af_gpu_sample g[64];
    size_t n = af_gpu_collector_latest(p->collector, g, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        af_gpu_spec spec = {.id = g[i].gpu_id,
                            .name = g[i].name,
                            .memory_total_mb = g[i].memory_total_mb,
                            .utilization = g[i].utilization_gpu,
                            .temperature = g[i].temperature,
                            .power_usage = g[i].power_draw,
                            .available = true};
        af_gpu_scheduler_register_gpu(p->scheduler, &spec, NULL, 0);
    }
    af_gpu_scheduler_attach_collector(p->scheduler, p->collector);
    if ((rc = af_gpu_collector_start(p->collector)) != 0) {
        fprintf(err, "agentaflow: GPU metrics: %s\n", af_strerror(rc));
        return rc;
    }
    af_cost_tracker_opts to;
    af_cost_tracker_opts_init(&to);
    to.tracing = p->tracing;
    if ((rc = af_cost_tracker_new(&to, &p->costs)) != 0) {
        fprintf(err, "agentaflow: cost tracking: %s\n", af_strerror(rc));
        return rc;
    }
    af_serving_opts sv;
    af_serving_opts_init(&sv);
    sv.costs = p->costs;
    sv.tracing = p->tracing;
    sv.workers = 2;
    if ((rc = af_serving_new(&sv, &p->serving)) != 0) {
        fprintf(err, "agentaflow: model serving: %s\n", af_strerror(rc));
        return rc;
    }
    return add_models(p, err);
}

void app_platform_stop(app_platform *p, uint32_t timeout_ms)
{
    af_serving_free(p->serving);
    if (p->collector)
        af_gpu_collector_stop(p->collector);
    af_gpu_scheduler_free(p->scheduler);
    af_gpu_collector_free(p->collector);
    af_cost_tracker_free(p->costs);
    if (p->tracing)
        af_tracing_shutdown(p->tracing, timeout_ms);
    af_trace_store_free(p->traces);
    af_tracing_free(p->tracing);
    memset(p, 0, sizeof(*p));
}

void app_server_opts(af_server_opts *o, const app_settings *st, const app_platform *p)
{
    af_server_opts_init(o);
    o->bind_address = st->bind_address;
    o->port = st->port;
    o->metrics_port = st->metrics_port;
    o->auth_token = st->auth_token[0] ? st->auth_token : NULL;
    o->ws_push_interval_ms = st->ws_push_interval_ms;
    o->max_ws_clients = st->max_ws_clients;
    o->ws_queue_depth = st->ws_queue_depth;
    o->body_limit = (size_t)st->body_limit;
    o->max_inflight = st->max_inflight;
    o->workers = st->workers;
    o->event_loops = st->event_loops;
    o->load_generator = st->load_generator;
    o->title = st->title;
    static const char *hosts[16];
    for (size_t i = 0; i < st->n_allowed_hosts; i++)
        hosts[i] = st->allowed_hosts[i];
    o->allowed_hosts = hosts;
    o->n_allowed_hosts = st->n_allowed_hosts;
    o->auth_read = st->auth_read;
    o->tls_cert_file = st->tls_cert_file;
    o->tls_key_file = st->tls_key_file;
    o->tls_client_ca_file = st->tls_client_ca_file;
    o->inference_timeout_ms = st->inference_timeout_ms;
    o->max_input_tokens = st->max_input_tokens;
    o->max_label_values = st->max_label_values;
    o->tracing = p->tracing;
    o->scheduler = p->scheduler;
    o->collector = p->collector;
    o->serving = p->serving;
    o->costs = p->costs;
    o->traces = p->traces;
}
