/*
 * Loading the configuration for the subcommands, and the assembly of the platform.
 */
#define AF_LOG_COMPONENT "server"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "app.h"

int app_load_config(const char *path, af_tracing_config *cfg, FILE *err)
{
    af_config_diag d;
    af_config_diag_init(&d);
    if (af_tracing_config_init(cfg) != 0) {
        fprintf(err, "agentaflow: out of memory\n");
        return 1;
    }
    int rc = path ? af_tracing_config_load(path, cfg, &d) : 0;
    if (rc != 0 && rc != AF_EPARSE) {
        fprintf(err, "%s: cannot read: %s\n", path, af_strerror(rc));
        af_config_diag_free(&d);
        return 1;
    }
    if (af_tracing_config_apply_env(cfg, &d) != 0) {
        fprintf(err, "agentaflow: out of memory\n");
        af_config_diag_free(&d);
        return 1;
    }
    for (size_t i = 0; i < d.n_entries; i++)
        fprintf(err, "%s: %s\n", af_diag_severity_name(d.entries[i].severity),
                d.entries[i].message);
    if (d.suppressed)
        fprintf(err, "(%zu more diagnostics not shown)\n", d.suppressed);
    bool bad = d.n_errors > 0;
    af_config_diag_free(&d);
    return bad ? 1 : 0;
}

int app_set_flag(af_tracing_config *cfg, const char *cmd, const char *flag, const char *key,
                 const char *value, FILE *err)
{
    char why[256] = "";
    int rc = af_config_set(cfg, key, value, why, sizeof(why));
    if (rc == 0)
        return 0;
    fprintf(err, "%s: %s: %s\n", cmd, flag, rc == AF_EPARSE ? why : af_strerror(rc));
    return 2;
}

/* Whether every server.log_levels entry names a level (the key table cannot: a map's values
 * are free text). */
static int check_logging(const af_server_config *sc, char *err, size_t err_len)
{
    af_log_level lv;
    for (size_t i = 0; i < sc->n_log_levels; i++) {
        const af_config_kv *kv = &sc->log_levels[i];
        if (af_log_level_parse(kv->value, &lv) != 0 || !kv->key[0] || strlen(kv->key) > 31) {
            snprintf(err, err_len,
                     "server.log_levels.%s: expected debug, info, warn, error or off, got "
                     "\"%s\"",
                     kv->key, kv->value);
            return -EINVAL;
        }
    }
    return 0;
}

int app_apply_logging(const af_server_config *sc, char *err, size_t err_len)
{
    int rc = check_logging(sc, err, err_len);
    if (rc != 0)
        return rc;
    af_log_level lv;
    af_log_set_level((af_log_level)sc->log_level);
    af_log_level_from_env();
    af_log_clear_component_levels();
    for (size_t i = 0; i < sc->n_log_levels; i++) {
        af_log_level_parse(sc->log_levels[i].value, &lv);
        af_log_set_component_level(sc->log_levels[i].key, lv);
    }
    af_log_set_format(sc->log_format == AF_CONFIG_LOG_JSON ? AF_LOG_FORMAT_JSON
                                                           : AF_LOG_FORMAT_TEXT);
    return 0;
}

/* The configuration as a reload reads it: defaults, file, environment, flags. Diagnostics
 * are logged; 0 when there were no errors. */
static int reload_read(const char *path, const app_flag *flags, size_t n_flags,
                       af_tracing_config *cfg)
{
    af_config_diag d;
    af_config_diag_init(&d);
    if (af_tracing_config_init(cfg) != 0)
        return -ENOMEM;
    int rc = af_tracing_config_load(path, cfg, &d);
    if (rc != 0 && rc != AF_EPARSE) {
        af_log(AF_LOG_ERROR, "SIGHUP: %s: cannot read: %s", path, af_strerror(rc));
        af_config_diag_free(&d);
        return rc;
    }
    if (af_tracing_config_apply_env(cfg, &d) != 0) {
        af_config_diag_free(&d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d.n_entries; i++) {
        /* The loader's messages start with file:line:col. */
        af_log(d.entries[i].severity == AF_DIAG_ERROR ? AF_LOG_ERROR : AF_LOG_WARN, "SIGHUP: %s",
               d.entries[i].message);
    }
    rc = d.n_errors ? AF_EPARSE : 0;
    af_config_diag_free(&d);
    for (size_t i = 0; rc == 0 && i < n_flags; i++) {
        char why[256] = "";
        if (flags[i].value &&
            (rc = af_config_set(cfg, flags[i].key, flags[i].value, why, sizeof why)) != 0)
            af_log(AF_LOG_ERROR, "SIGHUP: %s: %s", flags[i].flag, why[0] ? why : af_strerror(rc));
    }
    return rc;
}

int app_reload(const char *path, const app_flag *flags, size_t n_flags, app_platform *p,
               af_server *srv)
{
    char err[512] = "";
    int rc = 0;
    if (path) {
        af_tracing_config next;
        rc = reload_read(path, flags, n_flags, &next);
        if (rc == 0 && (rc = check_logging(&next.server, err, sizeof err)) != 0)
            af_log(AF_LOG_ERROR, "SIGHUP: %s: %s", path, err);
        if (rc != 0) {
            af_log(AF_LOG_ERROR, "SIGHUP: %s has errors; keeping the running configuration", path);
            af_tracing_config_clear(&next);
            return rc;
        }
        rc = af_tracing_reconfigure(p->tracing, &next, err, sizeof err);
        if (rc != 0) {
            af_tracing_config_clear(&next);
            af_log(AF_LOG_ERROR, "SIGHUP: tracing: %s; keeping the running configuration", err);
            return rc;
        }
        app_apply_logging(&next.server, err, sizeof err); /* checked above */
        /* After the new log settings, so these lines come in the format asked for; the
         * effective configuration kept every non-reloadable key's running value. */
        const char *keys[16];
        size_t n = af_config_restart_keys(af_tracing_config_of(p->tracing), &next, keys, 16);
        for (size_t i = 0; i < n && i < 16; i++)
            af_log(AF_LOG_WARN,
                   "SIGHUP: %s changed; it needs a restart (keeping the running value)", keys[i]);
        af_tracing_config_clear(&next);
        af_log(AF_LOG_INFO, "SIGHUP: configuration reloaded from %s", path);
    }
    const af_tracing_config *cur = af_tracing_config_of(p->tracing);
    if (!cur->server.tls.cert_file) {
        if (!path)
            af_log(AF_LOG_INFO, "SIGHUP: no --config file and no TLS; nothing to reload");
        return 0;
    }
    if (af_server_reload_tls(srv, err, sizeof err) != 0) {
        af_log(AF_LOG_ERROR, "SIGHUP: TLS reload failed, keeping the current certificates: %s",
               err);
        return -EINVAL;
    }
    af_log(AF_LOG_INFO, "SIGHUP: TLS certificates reloaded; new connections use them");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Platform.                                                                                 */

bool app_persists(const af_server_config *sc)
{
    return sc->persist && !(sc->data_dir && strcmp(sc->data_dir, ":memory:") == 0);
}

/* A second daemon on the same directory, or a directory it cannot use, fails before
 * anything else starts. */
static int open_state(app_platform *p, const af_server_config *st, FILE *err)
{
    if (!app_persists(st))
        return 0;
    af_state_opts so;
    af_state_opts_init(&so);
    so.data_dir = st->data_dir;
    so.fsync_full = st->fsync == AF_CONFIG_FSYNC_FULL;
    so.retention_costs_days = st->retention.costs_days;
    so.retention_workloads_days = st->retention.workloads_days;
    char e[512] = "";
    int rc = af_state_open(&so, &p->state, e, sizeof(e));
    if (rc != 0)
        fprintf(err, "agentaflow: %s\n", e[0] ? e : af_strerror(rc));
    return rc;
}

static int start_tracing(app_platform *p, const af_tracing_config *cfg, FILE *err)
{
    char e[512] = "";
    int rc;
    const af_server_config *st = &cfg->server;
    /* Request values reach span attributes (ids, names, errors): no request may park more
     * than this in a span, unless OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise. */
    af_tracing_config tc = *cfg;
    tc.tracing.attribute_value_length_default = 4096;
    rc = af_tracing_new(&tc, &p->tracing, e, sizeof(e));
    if (rc != 0) {
        fprintf(err, "agentaflow: tracing: %s\n", e[0] ? e : af_strerror(rc));
        return rc;
    }
    if (af_tracing_tracer(p->tracing)) {
        af_exporter *ex = NULL;
        rc = af_trace_store_new(st->trace_store_spans, (size_t)st->trace_store_bytes, &ex,
                                &p->traces);
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
    return 0;
}

static int new_collector(app_platform *p, const af_server_config *st, FILE *err)
{
    char e[512] = "";
    int rc;
    af_gpu_collector_opts co;
    af_gpu_collector_opts_init(&co);
    co.backend = st->gpu_backend == AF_CONFIG_GPU_NVML        ? AF_GPU_BACKEND_NVML
                 : st->gpu_backend == AF_CONFIG_GPU_SIMULATED ? AF_GPU_BACKEND_SIMULATED
                                                              : AF_GPU_BACKEND_AUTO;
    co.sim.gpus = st->simulated_gpus;
    co.sim.seed = (uint64_t)af_now_ns();
    co.tracing.tracing = p->tracing;
    rc = af_gpu_collector_new(&co, &p->collector, e, sizeof(e));
    if (rc != 0) {
        fprintf(err, "agentaflow: GPU metrics: %s\n", e[0] ? e : af_strerror(rc));
        return rc;
    }
    return 0;
}

static int new_costs(app_platform *p, const af_server_config *st, FILE *err)
{
    int rc;
    af_cost_tracker_opts to;
    af_cost_tracker_opts_init(&to);
    to.tracing = p->tracing;
    to.max_names = st->max_label_values; /* the cost families' label values */
    if (p->state) {
        to.on_record = af_state_cost_recorded;
        to.on_record_user = p->state;
    }
    if ((rc = af_cost_tracker_new(&to, &p->costs)) != 0) {
        fprintf(err, "agentaflow: cost tracking: %s\n", af_strerror(rc));
        return rc;
    }
    return 0;
}

/* The scheduler learns this host's GPUs from one synchronous collector cycle, before
 * anything is submitted. */
static int new_scheduler(app_platform *p, FILE *err)
{
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    so.tracing.tracing = p->tracing;
    if (p->state) {
        so.on_change = af_state_workload_changed;
        so.on_change_user = p->state;
    }
    int rc = af_gpu_scheduler_new(&so, &p->scheduler);
    if (rc != 0) {
        fprintf(err, "agentaflow: scheduler: %s\n", af_strerror(rc));
        return rc;
    }
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
    return 0;
}

static int new_cluster(app_platform *p, const af_tracing_config *cfg, FILE *err)
{
    if (!cfg->cluster.enabled)
        return 0;
    af_cluster_opts ko;
    af_cluster_opts_init(&ko);
    ko.strategy = (af_gpu_strategy)cfg->cluster.strategy;
    ko.node_timeout_ms = cfg->cluster.node_timeout_ms;
    ko.reservation_ttl_ms = cfg->cluster.reservation_ttl_ms;
    ko.max_nodes = cfg->cluster.max_nodes;
    ko.whole_gpu_reported_use = cfg->cluster.whole_gpu_reported_use;
    ko.whole_gpu_busy_memory_mb = cfg->cluster.whole_gpu_busy_memory_mb;
    ko.tracing.tracing = p->tracing;
    int rc = af_cluster_new(&ko, &p->cluster);
    if (rc != 0)
        fprintf(err, "agentaflow: cluster scheduler: %s\n", af_strerror(rc));
    return rc;
}

/* What was saved comes back after the GPUs are known (running workloads take their memory on
 * them again), before the collector starts and raises new alerts. */
static int restore_and_collect(app_platform *p, FILE *err)
{
    char e[512] = "";
    int rc;
    if (p->state && (rc = af_state_restore(p->state, p->scheduler, p->collector, p->costs,
                                           p->cluster, e, sizeof(e))) != 0) {
        fprintf(err, "agentaflow: restoring %s: %s\n", af_state_dir(p->state), e);
        return rc;
    }
    if ((rc = af_gpu_collector_start(p->collector)) != 0) {
        fprintf(err, "agentaflow: GPU metrics: %s\n", af_strerror(rc));
        return rc;
    }
    return 0;
}

static int new_serving(app_platform *p, const af_tracing_config *cfg, FILE *err)
{
    af_serving_opts sv;
    af_serving_opts_init(&sv);
    sv.costs = p->costs;
    sv.tracing = p->tracing;
    sv.workers = 2;
    sv.max_chat_calls = cfg->serving.max_streams;
    sv.breaker_failures = cfg->serving.breaker_failures;
    sv.breaker_cooldown_ms = cfg->serving.breaker_cooldown_ms;
    sv.connect_retries = cfg->serving.connect_retries;
    int rc = af_serving_new(&sv, &p->serving);
    if (rc != 0)
        fprintf(err, "agentaflow: model serving: %s\n", af_strerror(rc));
    return rc;
}

int app_platform_start(app_platform *p, const af_tracing_config *cfg, FILE *err)
{
    const af_server_config *st = &cfg->server;
    memset(p, 0, sizeof(*p));
    int rc;
    if ((rc = open_state(p, st, err)) != 0 || (rc = start_tracing(p, cfg, err)) != 0 ||
        (rc = new_collector(p, st, err)) != 0 || (rc = new_costs(p, st, err)) != 0 ||
        (rc = new_scheduler(p, err)) != 0 || (rc = new_cluster(p, cfg, err)) != 0 ||
        (rc = restore_and_collect(p, err)) != 0 || (rc = new_serving(p, cfg, err)) != 0)
        return rc;
    return app_add_models(p->serving, &cfg->serving, err);
}

void app_platform_stop(app_platform *p, uint32_t timeout_ms)
{
    af_serving_free(p->serving);
    if (p->collector)
        af_gpu_collector_stop(p->collector);
    af_state_detach(p->state);
    af_gpu_scheduler_free(p->scheduler);
    af_gpu_collector_free(p->collector);
    af_cost_tracker_free(p->costs);
    af_cluster_free(p->cluster);
    /* Last: what the components reported while stopping is committed too. */
    af_state_free(p->state);
    if (p->tracing)
        af_tracing_shutdown(p->tracing, timeout_ms);
    af_trace_store_free(p->traces);
    af_tracing_free(p->tracing);
    memset(p, 0, sizeof(*p));
}

void app_server_opts(af_server_opts *o, const af_server_config *sc, const app_platform *p)
{
    af_server_opts_init(o);
    o->bind_address = sc->bind_address;
    o->port = sc->port;
    o->metrics_port = sc->metrics_port;
    o->auth_token = sc->auth_token;
    o->ws_push_interval_ms = sc->ws_push_interval_ms;
    o->max_ws_clients = sc->max_ws_clients;
    o->ws_queue_depth = sc->ws_queue_depth;
    o->body_limit = (size_t)sc->body_limit;
    o->max_inflight = sc->max_inflight;
    o->workers = sc->workers;
    o->event_loops = sc->event_loops;
    o->load_generator = sc->load_generator;
    o->title = sc->title;
    o->allowed_hosts = (const char *const *)sc->allowed_hosts;
    o->n_allowed_hosts = sc->n_allowed_hosts;
    o->auth_read = sc->auth.read;
    o->tls_cert_file = sc->tls.cert_file;
    o->tls_key_file = sc->tls.key_file;
    o->tls_client_ca_file = sc->tls.client_ca_file;
    o->inference_timeout_ms = sc->inference_timeout_ms;
    o->max_input_tokens = sc->max_input_tokens;
    o->max_label_values = sc->max_label_values;
    o->tracing = p->tracing;
    o->scheduler = p->scheduler;
    o->collector = p->collector;
    o->serving = p->serving;
    o->costs = p->costs;
    o->traces = p->traces;
    o->store = af_state_store(p->state);
}
