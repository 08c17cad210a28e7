/*
 * app/agentaflow/app.h - what the subcommands of the agentaflow program share: loading the
 * configuration (the tracing keys and the daemon's `server:` section, one key table, one
 * parse) and the assembly of the platform (tracing, collector, scheduler, serving, costs,
 * trace store).
 */
#ifndef AF_APP_H
#define AF_APP_H

#include <signal.h>
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

/* A command-line flag that overrides a key (applied after the file and the environment, at
 * start and again on every reload, so it keeps winning). value NULL = not given. set: a
 * switch (no argument) that gives the key this value; NULL = the flag takes an argument. */
typedef struct app_flag {
    const char *flag, *key, *value, *set;
} app_flag;

/* The options every daemon subcommand takes besides its flags. */
typedef struct app_cli {
    const char *config;    /* --config FILE */
    const char *port_file; /* --port-file FILE */
} app_cli;

/* Parses argv (app_cli.c): each flag's value, --config, --port-file; -h/--help prints help
 * to stdout (returns 1: exit 0); anything else prints "<cmd>: unknown or incomplete option"
 * and the help to stderr (returns 2). 0 when the command should run. */
int app_parse_flags(int argc, char **argv, const char *cmd, app_flag *flags, size_t n_flags,
                    app_cli *cli, void (*help)(FILE *f));
/* app_set_flag for every given flag; 0 or 2 (printed). */
int app_apply_flags(af_tracing_config *cfg, const char *cmd, const app_flag *flags, size_t n_flags);
/* Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts (call it before
 * any), fills sigs for app_sd_wait_signal, ignores SIGPIPE and reads the log level from the
 * environment. */
void app_block_signals(sigset_t *sigs);
/* Writes "PORT METRICS_PORT\n" to path (NULL: nothing) through a rename; a failure is
 * printed as "<cmd>: cannot write PATH". */
void app_write_port_file(const char *path, af_server *srv, const char *cmd);

/* Applies server.log_level (then OTEL_LOG_LEVEL, which wins), server.log_levels and
 * server.log_format to af_log. 0, or -EINVAL with the offending entry in err (nothing is
 * changed then). */
int app_apply_logging(const af_server_config *sc, char *err, size_t err_len);

typedef struct af_serving af_serving;
/* Registers the gateway's models and instances from serving.models (models.c), or the
 * embedded simulated models when it is empty; errors are printed to err. 0 or an error. */
int app_add_models(af_serving *s, const af_serving_config *sc, FILE *err);

/* The assembled platform. */
typedef struct app_platform {
    af_tracing *tracing;
    af_trace_store *traces;
    af_gpu_collector *collector;
    af_gpu_scheduler *scheduler;
    af_cost_tracker *costs;
    af_serving *serving;
    af_state *state;     /* NULL when nothing persists */
    af_cluster *cluster; /* serve --cluster only */
} app_platform;

/* Builds and starts everything from cfg (server.* included). 0, or a negative code with a
 * message on err. */
int app_platform_start(app_platform *p, const af_tracing_config *cfg, FILE *err);
/* Stops and frees everything, flushing spans within timeout_ms. */
void app_platform_stop(app_platform *p, uint32_t timeout_ms);
/* Fills server options from the server section and the platform. The strings in *o are
 * borrowed from sc, which must outlive af_server_new (that copies them). */
void app_server_opts(af_server_opts *o, const af_server_config *sc, const app_platform *p);

/* Whether the server section asks for durable state (persist and a data_dir other than
 * ":memory:"). */
bool app_persists(const af_server_config *sc);
/* systemd (systemd.c). sd_notify(3) with a printf format; nothing without NOTIFY_SOCKET. */
void app_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 and STATUS=reloading; READY=1 must follow once the reload is done. */
void app_sd_reloading(void);
/* Waits for one of the blocked signals in set and returns it (-1 on error), sending
 * WATCHDOG=1 every half interval meanwhile when systemd's watchdog is on for this process. */
int app_sd_wait_signal(const sigset_t *set);
/* $CONFIGURATION_DIRECTORY/agentaflow.yaml written into buf when the variable is set and the
 * file exists (the unit's ConfigurationDirectory=), else NULL. */
const char *app_default_config(char *buf, size_t cap);
/*
 * SIGHUP: reads `path` again (environment and flags over it) and applies what can change
 * without a restart (af_config_key_reloadable) to the platform and the server's TLS files.
 * A file with errors changes nothing; every diagnostic is logged with its file:line:col.
 * Changed keys that need a restart are logged and keep their running values. Everything is
 * reported through af_log. 0 when the new configuration is in effect.
 */
int app_reload(const char *path, const app_flag *flags, size_t n_flags, app_platform *p,
               af_server *srv);

int cmd_serve(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
