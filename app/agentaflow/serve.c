/*
 * agentaflow serve: the daemon. Signals are blocked in every thread and taken synchronously
 * by the main thread with sigwait(), so shutdown and the reload on SIGHUP run in ordinary
 * code, not in a handler. Under systemd (Type=notify) the main thread also reports READY,
 * RELOADING, STOPPING and STATUS, and pets the watchdog while it waits (systemd.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "app.h"

static void serve_help(FILE *f)
{
    fprintf(f,
            "usage: agentaflow serve [options]\n\n"
            "Runs the daemon until SIGINT or SIGTERM. SIGHUP reloads the configuration file\n"
            "(sampling, exporters, components, logging; other keys need a restart) and the\n"
            "TLS certificate, key and client CA files (server.tls.*) for new connections.\n\n"
            "options:\n"
            "  --config FILE         tracing-config.yaml (plus an optional server: section);\n"
            "                        default $CONFIGURATION_DIRECTORY/agentaflow.yaml if any\n"
            "  --no-load-generator   no synthetic workloads, inference requests or costs\n"
            "  --port N              dashboard/API/WebSocket port (default 9000, 0 = any free)\n"
            "  --metrics-port N      Prometheus port (default 9001, 0 = any free, -1 = off)\n"
            "  --bind ADDR           listen address (default 127.0.0.1; others need a token)\n"
            "  --port-file FILE      write the bound ports there (\"PORT METRICS_PORT\\n\")\n"
            "  --gpu-backend B       auto (default), nvml or simulated\n"
            "  --data-dir DIR        durable state (default $STATE_DIRECTORY or ./data;\n"
            "                        :memory: = nothing persists)\n"
            "  --cluster             be the fleet's scheduler: agents report here, and the\n"
            "                        kube-scheduler extender answers on /scheduler/*\n"
            "  --log-format F        text (default) or json (one object per line)\n"
            "  -h, --help            this text\n\n"
            "environment: AGENTAFLOW_AUTH_TOKEN (bearer token for write routes),\n"
            "AGENTAFLOW_DATA_DIR,\n"
            "AGENTAFLOW_BIND_ADDRESS, AGENTAFLOW_PORT, AGENTAFLOW_METRICS_PORT,\n"
            "AGENTAFLOW_ALLOWED_HOSTS, and the OTEL_* variables of the tracing configuration.\n"
            "Options override the file and the environment. Every key: docs/configuration.md.\n");
}

/* The configuration: the file, the environment, then the flags; and the logging it asks for.
 * 0, or the exit status 2 with cfg cleared and why on stderr. */
static int serve_load_config(const char *config, const app_flag *flags, size_t n_flags,
                             af_tracing_config *cfg)
{
    if (app_load_config(config, cfg, stderr) != 0) {
        fprintf(stderr, "agentaflow serve: the configuration has errors; not starting\n");
        af_tracing_config_clear(cfg);
        return 2;
    }
    if (app_apply_flags(cfg, "agentaflow serve", flags, n_flags) != 0) {
        af_tracing_config_clear(cfg);
        return 2;
    }
    char err[512] = "";
    if (app_apply_logging(&cfg->server, err, sizeof(err)) != 0) {
        fprintf(stderr, "agentaflow serve: %s\n", err);
        af_tracing_config_clear(cfg);
        return 2;
    }
    return 0;
}

/* The platform and the server over it, cluster routes included. 0, or the exit status with
 * both stopped and why on stderr (cfg stays the caller's; the server borrows its strings). */
static int serve_start(const af_tracing_config *cfg, app_platform *p, af_server **srv)
{
    *srv = NULL;
    int rc = app_platform_start(p, cfg, stderr);
    if (rc != 0) {
        app_platform_stop(p, 2000);
        return 2;
    }
    af_server_opts so;
    app_server_opts(&so, &cfg->server, p);
    so.cluster = p->cluster;
    so.cluster_bind = cfg->cluster.bind;
    so.extender_auth = cfg->cluster.extender_auth;
    so.kube_api_url = cfg->cluster.kube_api_url;
    so.service_account_dir = cfg->cluster.service_account_dir;
    char err[512] = "";
    rc = af_server_new(&so, srv, err, sizeof(err));
    if (rc == 0)
        rc = af_server_start(*srv);
    if (rc != 0) {
        fprintf(stderr, "agentaflow serve: %s\n", err[0] ? err : af_strerror(rc));
        af_server_free(*srv);
        *srv = NULL;
        app_platform_stop(p, 2000);
        return rc == -EACCES || rc == -EINVAL ? 2 : 1;
    }
    return 0;
}

/* Says where the daemon listens (stdout, the port file), then READY=1 with serving, the
 * status line it keeps for later READY=1s. */
static void serve_announce(const af_tracing_config *cfg, const app_platform *p, af_server *srv,
                           const char *port_file, char *serving, size_t serving_len)
{
    const char *bind = cfg->server.bind_address;
    const char *scheme = cfg->server.tls.cert_file ? "https" : "http";
    printf("listening on %s://%s:%d\n", scheme, bind, af_server_port(srv));
    if (af_server_metrics_port(srv))
        printf("metrics on %s://%s:%d/metrics\n", scheme, bind, af_server_metrics_port(srv));
    if (p->cluster)
        printf("cluster scheduler: strategy %s, extender on /scheduler/filter|prioritize|bind\n",
               af_gpu_strategy_name(af_cluster_strategy(p->cluster)));
    printf("GPU backend: %s (%s); load generator %s\n", af_gpu_collector_backend_name(p->collector),
           af_gpu_collector_backend_reason(p->collector),
           cfg->server.load_generator ? "on" : "off");
    fflush(stdout);
    app_write_port_file(port_file, srv, "agentaflow serve");
    /* Only now: systemd starts units ordered After= this one when it reads READY=1. */
    snprintf(serving, serving_len, "serving on %s://%s:%d, metrics port %d", scheme, bind,
             af_server_port(srv), af_server_metrics_port(srv));
    app_sd_notifyf("READY=1\nSTATUS=%s", serving);
}

/* Drains and stops the server, then the platform, telling systemd; clears cfg. */
static void serve_stop(af_tracing_config *cfg, app_platform *p, af_server *srv)
{
    af_serving_stats st = {0};
    if (p->serving)
        af_serving_stats_get(p->serving, &st);
    app_sd_notifyf("STOPPING=1\nSTATUS=draining %u requests", st.pending_requests + st.in_flight);
    af_server_stop(srv);
    af_server_free(srv);
    /* Spans are flushed within a bound even when a collector is dead. */
    app_platform_stop(p, 5000);
    af_tracing_config_clear(cfg);
    app_sd_notifyf("STATUS=stopped");
    fprintf(stderr, "agentaflow: stopped\n");
}

int cmd_serve(int argc, char **argv)
{
    /* Flags that override a key, in the table's words; applied after the file and the
     * environment, so they win. A repeated flag: the last one counts. */
    app_flag flags[] = {
        {"--no-load-generator", "server.load_generator", NULL, "false"},
        {"--bind", "server.bind_address", NULL, NULL},
        {"--gpu-backend", "server.gpu_backend", NULL, NULL},
        {"--port", "server.port", NULL, NULL},
        {"--metrics-port", "server.metrics_port", NULL, NULL},
        {"--data-dir", "server.data_dir", NULL, NULL},
        {"--cluster", "cluster.enabled", NULL, "true"},
        {"--log-format", "server.log_format", NULL, NULL},
    };
    const size_t n_flags = sizeof(flags) / sizeof(flags[0]);
    app_cli cli;
    int rc = app_parse_flags(argc, argv, "agentaflow serve", flags, n_flags, &cli, serve_help);
    if (rc)
        return rc == 1 ? 0 : rc;
    char default_config[4096];
    const char *config =
        cli.config ? cli.config : app_default_config(default_config, sizeof(default_config));

    /* Before any thread exists, so every thread inherits the mask. */
    sigset_t sigs;
    app_block_signals(&sigs);
    /* Past a file size limit a write fails with EFBIG (the store answers 503) instead of
     * killing the daemon. */
    signal(SIGXFSZ, SIG_IGN);

    af_tracing_config cfg; /* lives until the end: the server options borrow its strings */
    app_platform p;
    af_server *srv;
    if ((rc = serve_load_config(config, flags, n_flags, &cfg)) != 0)
        return rc;
    if ((rc = serve_start(&cfg, &p, &srv)) != 0) {
        af_tracing_config_clear(&cfg);
        return rc;
    }
    char serving[256];
    serve_announce(&cfg, &p, srv, cli.port_file, serving, sizeof(serving));
    int sig = 0;
    while ((sig = app_sd_wait_signal(&sigs)) == SIGHUP) {
        app_sd_reloading();
        app_reload(config, flags, n_flags, &p, srv); /* reports through af_log */
        app_sd_notifyf("READY=1\nSTATUS=%s", serving);
    }
    fprintf(stderr, "agentaflow: %s received, shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_stop(&cfg, &p, srv);
    return 0;
}
