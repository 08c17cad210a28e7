/*
 * agentaflow serve: the daemon. Signals are blocked in every thread and taken synchronously
 * by the main thread with sigwait(), so shutdown and the TLS reload on SIGHUP run in ordinary
 * code, not in a handler.
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
    fprintf(f, "usage: agentaflow serve [options]\n\n"
               "Runs the daemon until SIGINT or SIGTERM. SIGHUP reloads the TLS certificate,\n"
               "key and client CA files (server.tls.*) for new connections.\n\n"
               "options:\n"
               "  --config FILE         tracing-config.yaml (plus an optional server: section)\n"
               "  --no-load-generator   no synthetic workloads, inference requests or costs\n"
               "  --port N              dashboard/API/WebSocket port (default 9000, 0 = any free)\n"
               "  --metrics-port N      Prometheus port (default 9001, 0 = any free, -1 = off)\n"
               "  --bind ADDR           listen address (default 127.0.0.1; others need a token)\n"
               "  --port-file FILE      write the bound ports there (\"PORT METRICS_PORT\\n\")\n"
               "  --gpu-backend B       auto (default), nvml or simulated\n"
               "  -h, --help            this text\n\n"
               "environment: AGENTAFLOW_AUTH_TOKEN (bearer token for write routes),\n"
               "AGENTAFLOW_BIND_ADDRESS, AGENTAFLOW_PORT, AGENTAFLOW_METRICS_PORT, and the\n"
               "OTEL_* variables of the tracing configuration.\n");
}

static bool int_arg(const char *v, long lo, long hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return false;
    *out = (int)n;
    return true;
}

int cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *port_file = NULL, *bind = NULL, *backend = NULL;
    int port = -2, mport = -2;
    bool no_load = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_help(stdout);
            return 0;
        } else if (!strcmp(a, "--no-load-generator")) {
            no_load = true;
        } else if (!strcmp(a, "--config") && has_val) {
            config = argv[++i];
        } else if (!strcmp(a, "--port-file") && has_val) {
            port_file = argv[++i];
        } else if (!strcmp(a, "--bind") && has_val) {
            bind = argv[++i];
        } else if (!strcmp(a, "--gpu-backend") && has_val) {
            backend = argv[++i];
        } else if (!strcmp(a, "--port") && has_val) {
            if (!int_arg(argv[++i], 0, 65535, &port)) {
                fprintf(stderr, "agentaflow serve: --port needs 0-65535\n");
                return 2;
            }
        } else if (!strcmp(a, "--metrics-port") && has_val) {
            if (!int_arg(argv[++i], -1, 65535, &mport)) {
                fprintf(stderr, "agentaflow serve: --metrics-port needs -1-65535\n");
                return 2;
            }
        } else {
            fprintf(stderr, "agentaflow serve: unknown or incomplete option '%s'\n\n", a);
            serve_help(stderr);
            return 2;
        }
    }

    /* Before any thread exists, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    af_log_level_from_env();

    af_tracing_config cfg;
    app_settings st;
    if (app_load_config(config, &cfg, &st, stderr) != 0) {
        fprintf(stderr, "agentaflow serve: the configuration has errors; not starting\n");
        af_tracing_config_free(&cfg);
        return 2;
    }
    if (no_load)
        st.load_generator = false;
    if (port != -2)
        st.port = port;
    if (mport != -2)
        st.metrics_port = mport;
    if (bind)
        snprintf(st.bind_address, sizeof(st.bind_address), "%s", bind);
    if (backend) {
        if (strcmp(backend, "auto") && strcmp(backend, "nvml") && strcmp(backend, "simulated")) {
            fprintf(stderr, "agentaflow serve: --gpu-backend is auto, nvml or simulated\n");
            af_tracing_config_free(&cfg);
            return 2;
        }
        snprintf(st.gpu_backend, sizeof(st.gpu_backend), "%s", backend);
    }

    app_platform p;
    int rc = app_platform_start(&p, &cfg, &st, stderr);
    af_tracing_config_free(&cfg);
    if (rc != 0) {
        app_platform_stop(&p, 2000);
        return 2;
    }
    af_server_opts so;
    app_server_opts(&so, &st, &p);
    af_server *srv = NULL;
    char err[512] = "";
    rc = af_server_new(&so, &srv, err, sizeof(err));
    if (rc == 0)
        rc = af_server_start(srv);
    if (rc != 0) {
        fprintf(stderr, "agentaflow serve: %s\n", err[0] ? err : af_strerror(rc));
        af_server_free(srv);
        app_platform_stop(&p, 2000);
        return rc == -EACCES || rc == -EINVAL ? 2 : 1;
    }
    const char *scheme = st.tls_cert_file[0] ? "https" : "http";
    printf("listening on %s://%s:%d\n", scheme, st.bind_address, af_server_port(srv));
    if (af_server_metrics_port(srv))
        printf("metrics on %s://%s:%d/metrics\n", scheme, st.bind_address,
               af_server_metrics_port(srv));
    printf("GPU backend: %s (%s); load generator %s\n", af_gpu_collector_backend_name(p.collector),
           af_gpu_collector_backend_reason(p.collector), st.load_generator ? "on" : "off");
    fflush(stdout);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d %d\n", af_server_port(srv), af_server_metrics_port(srv)) < 0 ||
            fclose(f) != 0 || rename(tmp, port_file) != 0)
            fprintf(stderr, "agentaflow serve: cannot write %s\n", port_file);
    }

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
        if (!st.tls_cert_file[0]) {
            af_log(AF_LOG_INFO, "SIGHUP: TLS is not configured; nothing to reload");
            continue;
        }
        rc = af_server_reload_tls(srv, err, sizeof(err));
        if (rc == 0)
            af_log(AF_LOG_INFO, "SIGHUP: TLS certificates reloaded; new connections use them");
        else
            af_log(AF_LOG_ERROR, "SIGHUP: TLS reload failed, keeping the current certificates: %s",
                   err);
    }
    fprintf(stderr, "agentaflow: %s received, shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    af_server_stop(srv);
    af_server_free(srv);
    /* Spans are flushed within a bound even when a collector is dead. */
    app_platform_stop(&p, 5000);
    fprintf(stderr, "agentaflow: stopped\n");
    return 0;
}
