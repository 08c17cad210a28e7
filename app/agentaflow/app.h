/*
 * app/agentaflow/app.h - what the subcommands of the agentaflow program share: the daemon's
 * own settings (the `server:` section of the config file, AGENTAFLOW_* variables, flags) and
 * the assembly of the platform (tracing, collector, scheduler, serving, costs, trace store).
 *
 * The `server:` section lives in the same YAML file as the tracing configuration. The tracing
 * loader does not know it (its key table is the document's schema), so this program parses
 * that section itself and drops the loader's "unknown key" notes about it.
 */
#ifndef AF_APP_H
#define AF_APP_H

#include <stdio.h>

#include "agentaflow/config.h"
#include "agentaflow/server.h"

typedef struct app_settings {
    char bind_address[128];
    int port;
    int metrics_port;
    char auth_token[256]; /* secret */
    uint32_t ws_push_interval_ms;
    uint32_t max_ws_clients;
    uint32_t ws_queue_depth;
    uint64_t body_limit;
    uint32_t max_inflight;
    uint32_t workers;
    uint32_t event_loops; /* 0 = one per online CPU */
    uint32_t trace_store_spans;
    bool load_generator;
    char gpu_backend[16]; /* auto | nvml | simulated */
    uint32_t simulated_gpus;
    char title[128];
    uint64_t trace_store_bytes;  /* bound on the trace store's memory */
    char allowed_hosts[16][256]; /* server.allowed_hosts: extra accepted Host values */
    size_t n_allowed_hosts;
    bool auth_read;                /* server.auth.read */
    char tls_cert_file[4096];      /* server.tls.cert_file */
    char tls_key_file[4096];       /* server.tls.key_file */
    char tls_client_ca_file[4096]; /* server.tls.client_ca_file */
    uint32_t inference_timeout_ms; /* server.inference_timeout */
    uint32_t max_input_tokens;     /* server.max_input_tokens */
    uint32_t max_label_values;     /* server.max_label_values */
} app_settings;

void app_settings_init(app_settings *s);
/* Reads the `server:` section of a YAML file. Errors are printed to `err` as
 * "file:line:col: server.key: message" lines; returns the number of errors (-1: unreadable). */
int app_settings_load(app_settings *s, const char *path, FILE *err);
/* AGENTAFLOW_AUTH_TOKEN, AGENTAFLOW_BIND_ADDRESS, AGENTAFLOW_PORT, AGENTAFLOW_METRICS_PORT. */
int app_settings_apply_env(app_settings *s, FILE *err);
/* "server.key = value" lines, token redacted. */
void app_settings_print(const app_settings *s, FILE *out);

/* Loads the tracing config (init, file, env) and the settings; prints every diagnostic to
 * `err` (except notes about the server section). Returns 0, or 1 when there were errors. */
int app_load_config(const char *path, af_tracing_config *cfg, app_settings *st, FILE *err);

/* The assembled platform. */
typedef struct app_platform {
    af_tracing *tracing;
    af_trace_store *traces;
    af_gpu_collector *collector;
    af_gpu_scheduler *scheduler;
    af_cost_tracker *costs;
    af_serving *serving;
} app_platform;

/* Builds and starts everything from cfg/st. 0, or a negative code with a message on err. */
int app_platform_start(app_platform *p, const af_tracing_config *cfg, const app_settings *st,
                       FILE *err);
/* Stops and frees everything, flushing spans within timeout_ms. */
void app_platform_stop(app_platform *p, uint32_t timeout_ms);
/* Fills server options from the settings and the platform. */
void app_server_opts(af_server_opts *o, const app_settings *st, const app_platform *p);

int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
