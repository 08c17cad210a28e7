/*
 * app/agentaflow/app.h - what the subcommands of the agentaflow program share: loading the
 * configuration (the tracing keys and the daemon's `server:` section, one key table, one
 * parse) and the assembly of the platform (tracing, collector, scheduler, serving, costs,
 * trace store).
 */
#ifndef AF_APP_H
#define AF_APP_H

#include <stdio.h>

#include "agentaflow/config.h"
#include "agentaflow/server.h"

/* Loads the configuration (init, file, environment); prints every diagnostic to `err`.
 * Returns 0, or 1 when there were errors. cfg needs af_tracing_config_clear either way. */
int app_load_config(const char *path, af_tracing_config *cfg, FILE *err);

/* Sets one key from a command-line flag, validated by the key table; a bad value is printed
 * to `err` as "<cmd>: <flag>: <reason>". 0 or 2 (the exit status for bad usage). */
int app_set_flag(af_tracing_config *cfg, const char *cmd, const char *flag, const char *key,
                 const char *value, FILE *err);

/* The assembled platform. */
typedef struct app_platform {
    af_tracing *tracing;
    af_trace_store *traces;
    af_gpu_collector *collector;
    af_gpu_scheduler *scheduler;
    af_cost_tracker *costs;
    af_serving *serving;
} app_platform;

/* Builds and starts everything from cfg (server.* included). 0, or a negative code with a
 * message on err. */
int app_platform_start(app_platform *p, const af_tracing_config *cfg, FILE *err);
/* Stops and frees everything, flushing spans within timeout_ms. */
void app_platform_stop(app_platform *p, uint32_t timeout_ms);
/* Fills server options from the server section and the platform. The strings in *o are
 * borrowed from sc, which must outlive af_server_new (that copies them). */
void app_server_opts(af_server_opts *o, const af_server_config *sc, const app_platform *p);

int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
