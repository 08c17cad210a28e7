/*
 * agentaflow agent: one per GPU node. It runs the platform's GPU collector, serves /health, the
 * GPU read routes and Prometheus through the ordinary server (with no scheduler, serving or
 * cost components: their routes answer 503), and every agent.report_interval POSTs its node's
 * GPUs (inventory, latest samples, processes, health) to the cluster scheduler's
 * /api/v1/cluster/report with the bearer token (server.auth_token).
 *
 * Threads: the main thread waits for signals with app_sd_wait_signal, serve's loop (petting
 * systemd's watchdog meanwhile); "af-agent-report" sends the reports. A failing scheduler is logged
 * when the state changes, not every interval.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentaflow/cluster.h"
#include "agentaflow/log.h"
#include "app.h"

static void agent_help(FILE *f)
{
    fprintf(f, "usage: agentaflow agent --scheduler URL [options]\n\n"
               "Runs the per-node agent until SIGINT or SIGTERM: collects this node's GPUs,\n"
               "serves /health and Prometheus, and reports to the cluster scheduler.\n\n"
               "options:\n"
               "  --scheduler URL       the cluster scheduler (agentaflow serve --cluster)\n"
               "  --node-name N         this node's Kubernetes name (default $NODE_NAME, else\n"
               "                        the host name)\n"
               "  --config FILE         configuration file (agent.*, server.* keys)\n"
               "  --port N              /health and GPU API port (default 9000, 0 = any free)\n"
               "  --metrics-port N      Prometheus port (default 9001, 0 = any free)\n"
               "  --bind ADDR           listen address (default 127.0.0.1; others need a token)\n"
               "  --port-file FILE      write the bound ports there (\"PORT METRICS_PORT\\n\")\n"
               "  --gpu-backend B       auto (default), nvml or simulated\n"
               "  -h, --help            this text\n\n"
               "environment: NODE_NAME, AGENTAFLOW_SCHEDULER_URL, AGENTAFLOW_AUTH_TOKEN (sent\n"
               "to the scheduler as the bearer token), and the keys of docs/configuration.md.\n");
}

typedef struct reporter {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    af_gpu_collector *collector;
    char url[2200];
    char node[AF_CLUSTER_NODE_MAX];
    const char *token;   /* borrowed from the config */
    const char *ca_file; /* idem */
    uint32_t interval_ms;
    bool failing; /* the last report failed (logged once per change) */
} reporter;

/* The report of the collector's latest samples. */
static int build_report(reporter *r, char **body)
{
    af_gpu_sample s[AF_CLUSTER_GPUS_PER_NODE_MAX];
    size_t n = af_gpu_collector_latest(r->collector, s, AF_CLUSTER_GPUS_PER_NODE_MAX);
    if (n > AF_CLUSTER_GPUS_PER_NODE_MAX)
        n = AF_CLUSTER_GPUS_PER_NODE_MAX;
    af_cluster_gpu *g = calloc(n ? n : 1, sizeof(*g));
    af_gpu_process *pr = calloc(n ? n * AF_GPU_MAX_PROCESSES : 1, sizeof(*pr));
    int rc = g && pr ? 0 : -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned idx;
        /* Collector ids are "gpu-<index>"; the scheduler names them "<node>/gpu-<index>". */
        if (sscanf(s[i].gpu_id, "gpu-%u", &idx) != 1 || idx >= AF_CLUSTER_GPUS_PER_NODE_MAX)
            continue;
        af_cluster_gpu *o = &g[k++];
        o->index = idx;
        memcpy(o->name, s[i].name, sizeof(o->name));
        o->memory_total_mb = s[i].memory_total_mb;
        o->memory_used_mb = s[i].memory_used_mb;
        o->memory_free_mb = s[i].memory_free_mb;
        o->utilization = s[i].utilization_gpu;
        o->temperature = s[i].temperature;
        o->power_draw = s[i].power_draw;
        af_gpu_health h;
        o->health =
            af_gpu_collector_health(r->collector, s[i].gpu_id, &h) == 0 ? h.status : AF_GPU_HEALTHY;
        o->procs = &pr[i * AF_GPU_MAX_PROCESSES];
        size_t np =
            af_gpu_collector_processes(r->collector, s[i].gpu_id, o->procs, AF_GPU_MAX_PROCESSES);
        o->n_procs = (uint32_t)(np > AF_GPU_MAX_PROCESSES ? AF_GPU_MAX_PROCESSES : np);
    }
    if (rc == 0) {
        af_cluster_report rep = {r->node, g, k};
        rc = af_cluster_report_body(&rep, body);
    }
    free(g);
    free(pr);
    return rc;
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* One report. 0, or -EIO with why filled. */
static int send_report(reporter *r, CURL *h, char *why, size_t why_len)
{
    char *body = NULL;
    int rc = build_report(r, &body);
    if (rc) {
        snprintf(why, why_len, "%s", af_strerror(rc));
        return rc;
    }
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[300];
    if (r->token && *r->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
        hd = curl_slist_append(hd, auth);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long)(r->interval_ms < 10000 ? 10000 : r->interval_ms));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (r->ca_file && *r->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    free(body);
    if (cc != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_easy_strerror(cc));
        return -EIO;
    }
    if (status != 200) {
        snprintf(why, why_len, "the scheduler answered HTTP %ld", status);
        return -EIO;
    }
    return 0;
}

static void *report_loop(void *arg)
{
    reporter *r = arg;
    CURL *h = curl_easy_init();
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        char why[256] = "libcurl could not start";
        int rc = h ? send_report(r, h, why, sizeof(why)) : -ENOMEM;
        if (rc && !r->failing)
            af_log(AF_LOG_WARN, "agent: cannot report to %s: %s (retrying every interval)", r->url,
                   why);
        else if (!rc && r->failing)
            af_log(AF_LOG_INFO, "agent: reporting to %s again", r->url);
        r->failing = rc != 0;
        pthread_mutex_lock(&r->mu);
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)r->interval_ms * 1000000ull;
        dl.tv_sec += (time_t)(ns / 1000000000ull);
        dl.tv_nsec = (long)(ns % 1000000000ull);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    curl_easy_cleanup(h);
    return NULL;
}

/* The configuration: the file, the environment, then the flags; a scheduler URL is required.
 * 0, or the exit status 2 with cfg cleared and why on stderr. */
static int agent_load_config(const char *config, const app_flag *flags, size_t n_flags,
                             af_tracing_config *cfg)
{
    if (app_load_config(config, cfg, stderr) != 0) {
        fprintf(stderr, "agentaflow agent: the configuration has errors; not starting\n");
        af_tracing_config_clear(cfg);
        return 2;
    }
    if (app_apply_flags(cfg, "agentaflow agent", flags, n_flags) != 0) {
        af_tracing_config_clear(cfg);
        return 2;
    }
    if (!cfg->agent.scheduler_url) {
        fprintf(stderr, "agentaflow agent: --scheduler URL is required (or agent.scheduler_url, "
                        "AGENTAFLOW_SCHEDULER_URL)\n");
        af_tracing_config_clear(cfg);
        return 2;
    }
    return 0;
}

/* Where and what r reports (node name, URL, token, CA file, interval), from cfg, whose
 * strings r borrows. 0, or -EINVAL when there is no node name. */
static int reporter_configure(reporter *r, const af_tracing_config *cfg)
{
    memset(r, 0, sizeof(*r));
    if (cfg->agent.node_name)
        snprintf(r->node, sizeof(r->node), "%s", cfg->agent.node_name);
    else if (gethostname(r->node, sizeof(r->node) - 1) != 0 || !r->node[0])
        return -EINVAL;
    const char *base = cfg->agent.scheduler_url;
    size_t bl = strlen(base);
    snprintf(r->url, sizeof(r->url), "%.*s/api/v1/cluster/report",
             (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base);
    r->token = cfg->server.auth_token;
    r->ca_file = cfg->agent.ca_file;
    r->interval_ms = cfg->agent.report_interval_ms;
    return 0;
}

/* The platform (no load generator) and the server over it without the scheduler, serving and
 * cost routes. 0, or the exit status with both stopped and why on stderr. */
static int agent_start(af_tracing_config *cfg, app_platform *p, af_server **srv)
{
    *srv = NULL;
    cfg->server.load_generator = false;
    int rc = app_platform_start(p, cfg, stderr);
    if (rc != 0) {
        app_platform_stop(p, 2000);
        return 2;
    }
    af_server_opts so;
    app_server_opts(&so, &cfg->server, p);
    so.scheduler = NULL;
    so.serving = NULL;
    so.costs = NULL;
    char err[512] = "";
    rc = af_server_new(&so, srv, err, sizeof(err));
    if (rc == 0)
        rc = af_server_start(*srv);
    if (rc != 0) {
        fprintf(stderr, "agentaflow agent: %s\n", err[0] ? err : af_strerror(rc));
        af_server_free(*srv);
        *srv = NULL;
        app_platform_stop(p, 2000);
        return rc == -EACCES || rc == -EINVAL ? 2 : 1;
    }
    return 0;
}

/* Starts r's thread on collector; 0 or pthread_create's error (then nothing reports). */
static int reporter_start(reporter *r, af_gpu_collector *collector)
{
    r->collector = collector;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&r->thread, NULL, report_loop, r);
    if (rc == 0)
        pthread_setname_np(r->thread, "af-agent-report");
    return rc;
}

/* Stops r's thread if reporter_start started it (running) and frees its lock. */
static void reporter_stop(reporter *r, bool running)
{
    if (running) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

int cmd_agent(int argc, char **argv)
{
    app_flag flags[] = {
        {"--scheduler", "agent.scheduler_url", NULL, NULL},
        {"--node-name", "agent.node_name", NULL, NULL},
        {"--bind", "server.bind_address", NULL, NULL},
        {"--gpu-backend", "server.gpu_backend", NULL, NULL},
        {"--port", "server.port", NULL, NULL},
        {"--metrics-port", "server.metrics_port", NULL, NULL},
    };
    const size_t n_flags = sizeof(flags) / sizeof(flags[0]);
    app_cli cli;
    int rc = app_parse_flags(argc, argv, "agentaflow agent", flags, n_flags, &cli, agent_help);
    if (rc)
        return rc == 1 ? 0 : rc;
    sigset_t sigs;
    app_block_signals(&sigs);

    af_tracing_config cfg;
    if ((rc = agent_load_config(cli.config, flags, n_flags, &cfg)) != 0)
        return rc;
    static reporter r;
    if (reporter_configure(&r, &cfg) != 0) {
        fprintf(stderr, "agentaflow agent: no node name: pass --node-name or set NODE_NAME\n");
        af_tracing_config_clear(&cfg);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    app_platform p;
    af_server *srv;
    if ((rc = agent_start(&cfg, &p, &srv)) != 0) {
        af_tracing_config_clear(&cfg);
        return rc;
    }
    bool reporting = reporter_start(&r, p.collector) == 0;
    printf("agent %s reporting to %s every %u ms\n", r.node, cfg.agent.scheduler_url,
           r.interval_ms);
    printf("listening on %s:%d; metrics on port %d\n", cfg.server.bind_address, af_server_port(srv),
           af_server_metrics_port(srv));
    fflush(stdout);
    app_write_port_file(cli.port_file, srv, "agentaflow agent");
    int sig = 0;
    /* SIGHUP changes nothing in an agent; systemd's watchdog is petted while it waits. */
    while ((sig = app_sd_wait_signal(&sigs)) == SIGHUP)
        ;
    fprintf(stderr, "agentaflow agent: %s received, shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    reporter_stop(&r, reporting);
    af_server_stop(srv);
    af_server_free(srv);
    app_platform_stop(&p, 5000);
    af_tracing_config_clear(&cfg);
    return 0;
}
