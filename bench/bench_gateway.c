/*
 * bench_gateway: the LLM gateway's OpenAI front door (POST /v1/chat/completions) through the
 * real daemon's HTTP listener, against a simulated backend with no latency before the first
 * token (first_token 0, token_interval 0, which the daemon paces at 50 us a token:
 * DAEMON_TOKEN_US), compared with the gateway's chat seam called in this process
 * (af_serving_chat_start on the same kind of backend, unpaced and paced), so the difference is
 * what the front door adds: HTTP framing, JSON parsing and formatting, the hand-off from the
 * gateway's thread to the connection's loop, and the loopback socket.
 *
 *   gateway_seam_request_us          one non-streamed call through af_serving_chat_start
 *   gateway_http_request_us          the same call as POST /v1/chat/completions (keep-alive)
 *   gateway_http_health_us           GET /health on the same kind of connection (the floor)
 *   gateway_*_cpu_us                 CPU time per call: this process for the seam, the
 *                                    daemon's threads (/proc/PID/task/N/schedstat) for HTTP;
 *                                    unlike the wall times, a loaded machine does not inflate it
 *   gateway_request_overhead_us      daemon CPU per HTTP call - seam CPU per call: what the
 *                                    front door adds (aim: <= 50 us)
 *   gateway_seam_chunk_us / _cpu_us  per streamed token through the seam (on_delta)
 *   gateway_http_chunk_us / _daemon_cpu_us   per streamed token through the front door
 *   gateway_chunk_overhead_us        daemon CPU per HTTP token - seam CPU per token (aim:
 *                                    <= 5 us)
 *   gateway_parallel_chunk_daemon_cpu_us   per streamed token through the front door with
 *                                    PARALLEL (16) streams at once on their own connections,
 *                                    where a loop turn carries several streams' tokens
 *   gateway_seam_paced_chunk_cpu_us  per streamed token through the seam on a backend paced as
 *                                    the daemon's is (DAEMON_TOKEN_US): its timer wake-ups too
 *   gateway_paced_chunk_overhead_us  daemon CPU per HTTP token - paced seam CPU per token: what
 *                                    the front door adds to a token on the same kind of backend
 *   gateway_traced_*                 the same HTTP calls with tracing on: the SERVER span, the
 *                                    route's child, model_serving.inference, the CLIENT span
 *                                    and cost_tracking.record_cost, exported to the trace store
 *   gateway_concurrent_streams       streams open at once, each past its first token, on a
 *                                    slow backend (100 ms a token; aim 1,000 on 2 cores)
 *   gateway_concurrent_daemon_rss_mib   the daemon's resident memory while they are open
 *   gateway_concurrent_daemon_cpu_pct   the daemon's CPU while they stream
 *   gateway_concurrent_tokens / _daemon_cpu_per_token_us   the tokens those streams carried
 *                                    and the daemon's CPU per token (tracing on), where one loop
 *                                    turn carries many streams' tokens
 *
 * Prints `name value unit` lines; nothing is asserted. BENCH_REQUESTS (default 2000) sets the
 * sequential calls per figure, BENCH_STREAMS (default 1000) the concurrent streams. Per-token
 * figures come from two runs per path, 1 token and up to 64 tokens a call (the simulated
 * model answers 16 to 63 tokens): (t64 - t1) / (tokens64 - tokens1).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentaflow/serving.h"

static char g_bin[PATH_MAX], g_tmp[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

/* ---------------------------------------------------------------------------------------- */
/* The daemon.                                                                               */

static pid_t start_daemon(const char *config, int *port)
{
    static int seq;
    char cfg[128], pf[128];
    snprintf(cfg, sizeof(cfg), "%s/cfg%d.yaml", g_tmp, ++seq);
    snprintf(pf, sizeof(pf), "%s/ports%d", g_tmp, seq);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fputs(config, f);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(g_bin, g_bin, "serve", "--config", cfg, "--port", "0", "--metrics-port", "-1",
              "--port-file", pf, "--gpu-backend", "simulated", "--no-load-generator", "--data-dir",
              ":memory:", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        f = fopen(pf, "r");
        if (f) {
            int ok = fscanf(f, "%d", port);
            fclose(f);
            if (ok == 1)
                return pid;
        }
        poll(NULL, 0, 25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_daemon(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU time of every thread of pid, in ns (the scheduler's own accounting, so a loaded
 * machine's waiting is not counted). */
static double task_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    double total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1)
            total += (double)ns;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return total;
}

static double self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double rss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return (double)kib / 1024.0;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int request(char *out, size_t cap, int seq, int max_tokens, bool stream)
{
    char body[256];
    int bl = snprintf(body, sizeof(body),
                      "{\"model\":\"zero\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"benchmark prompt %d\"}],\"max_tokens\":%d%s}",
                      seq, max_tokens, stream ? ",\"stream\":true" : "");
    return snprintf(out, cap,
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                    bl, body);
}

static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = hay; (p = memmem(p, len - (size_t)(p - hay), needle, nl)); p += nl)
        n++;
    return n;
}

/* One call on a keep-alive connection; returns the tokens it carried (streamed: the content
 * events; else 1), or -1. */
static long http_call(int fd, int seq, int max_tokens, bool stream)
{
    static _Thread_local char buf[1 << 16];
    char req[512];
    int n = request(req, sizeof(req), seq, max_tokens, stream);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *head_end = strstr(buf, "\r\n\r\n");
        if (!head_end)
            continue;
        if (stream) {
            if (len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0)
                return (long)count(buf, len, "\"delta\":{\"content\":");
        } else {
            const char *cl = strcasestr(buf, "content-length: ");
            if (cl && len >= (size_t)(head_end + 4 - buf) + strtoul(cl + 16, NULL, 10))
                return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 1 : -1;
        }
        if (len + 1 >= sizeof(buf))
            return -1;
    }
}

/* One GET /health on a keep-alive connection: the HTTP floor. */
static long health_call(int fd, int seq, int max_tokens, bool stream)
{
    (void)seq;
    (void)max_tokens;
    (void)stream;
    static char buf[4096];
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *head_end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "content-length: ");
        if (head_end && cl && len >= (size_t)(head_end + 4 - buf) + strtoul(cl + 16, NULL, 10))
            return 1;
        if (len + 1 >= sizeof(buf))
            return -1;
    }
}

typedef long (*call_fn)(int fd, int seq, int max_tokens, bool stream);

/* One measured run: wall seconds, the daemon's CPU ns and the tokens, per call. */
typedef struct run_stats {
    double secs, cpu_ns, tokens;
} run_stats;

static int http_run(pid_t pid, int port, call_fn fn, int requests, int max_tokens, bool stream,
                    int seq0, run_stats *out)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    long tok = 0;
    for (int i = 0; i < 50; i++) /* warm-up */
        if (fn(fd, seq0 + 1000000 + i, max_tokens, stream) < 0)
            return -1;
    double t0 = now_s(), c0 = task_cpu_ns(pid);
    for (int i = 0; i < requests; i++) {
        long t = fn(fd, seq0 + i, max_tokens, stream);
        if (t < 0) {
            close(fd);
            return -1;
        }
        tok += t;
    }
    out->cpu_ns = (task_cpu_ns(pid) - c0) / requests;
    out->secs = (now_s() - t0) / requests;
    out->tokens = (double)tok / requests;
    close(fd);
    return 0;
}

/* The same streamed calls on PARALLEL connections at once, each on its own thread: the
 * daemon's CPU per call over all of them. */
#define PARALLEL 16

typedef struct par_arg {
    int port, calls, max_tokens, seq0;
    pthread_barrier_t *go;
    long tokens;
    int rc;
} par_arg;

static void *par_main(void *p)
{
    par_arg *a = p;
    int fd = connect_to(a->port);
    a->rc = fd < 0 ? -1 : 0;
    for (int i = 0; i < 10 && a->rc == 0; i++) /* warm-up */
        if (http_call(fd, a->seq0 + 1000000 + i, a->max_tokens, true) < 0)
            a->rc = -1;
    pthread_barrier_wait(a->go);
    for (int i = 0; i < a->calls && a->rc == 0; i++) {
        long t = http_call(fd, a->seq0 + i, a->max_tokens, true);
        if (t < 0)
            a->rc = -1;
        else
            a->tokens += t;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int parallel_run(pid_t pid, int port, int requests, int max_tokens, int seq0, run_stats *out)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, PARALLEL + 1);
    par_arg a[PARALLEL];
    pthread_t th[PARALLEL];
    for (int i = 0; i < PARALLEL; i++) {
        a[i] = (par_arg){.port = port,
                         .calls = requests / PARALLEL,
                         .max_tokens = max_tokens,
                         .seq0 = seq0 + i * 100000,
                         .go = &go};
        pthread_create(&th[i], NULL, par_main, &a[i]);
    }
    pthread_barrier_wait(&go);
    double c0 = task_cpu_ns(pid);
    long tok = 0;
    int rc = 0;
    for (int i = 0; i < PARALLEL; i++) {
        pthread_join(th[i], NULL);
        tok += a[i].tokens;
        rc |= a[i].rc;
    }
    int calls = requests / PARALLEL * PARALLEL;
    out->cpu_ns = (task_cpu_ns(pid) - c0) / calls;
    out->tokens = (double)tok / calls;
    pthread_barrier_destroy(&go);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The seam, in this process.                                                                */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    long deltas;
} waiter;

static void on_delta(void *ctx, const char *text, size_t len)
{
    (void)text;
    (void)len;
    ((waiter *)ctx)->deltas++; /* callbacks of one call never run concurrently */
}

static void on_done(void *ctx, int rc, const af_chat_result *res)
{
    (void)res;
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->rc = rc;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int seam_run(af_serving *sv, int requests, int max_tokens, bool stream, int seq0,
                    run_stats *out)
{
    waiter w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    af_chat_callbacks cb = {.on_delta = on_delta, .on_done = on_done};
    long tok = 0;
    double t0 = 0, c0 = 0;
    int rc = 0;
    for (int i = -50; i < requests && rc == 0; i++) {
        if (i == 0) {
            t0 = now_s();
            c0 = self_cpu_ns();
        }
        char prompt[64];
        snprintf(prompt, sizeof(prompt), "benchmark prompt %d", seq0 + i + 1000000);
        af_chat_message m = {.role = "user", .content = prompt, .content_len = AF_LEN_NUL};
        af_chat_request rq = {.operation = AF_CHAT_OP_CHAT,
                              .model = "zero",
                              .messages = &m,
                              .n_messages = 1,
                              .max_tokens = (uint32_t)max_tokens,
                              .temperature = NAN,
                              .stream = stream};
        w.done = false;
        w.deltas = 0;
        af_chat_call *call = NULL;
        rc = af_serving_chat_start(sv, NULL, &rq, &cb, &w, &call, NULL, 0);
        if (rc != 0)
            break;
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        af_chat_call_release(call);
        rc = w.rc;
        if (i >= 0)
            tok += stream ? w.deltas : 1;
    }
    out->cpu_ns = (self_cpu_ns() - c0) / requests;
    out->secs = (now_s() - t0) / requests;
    out->tokens = (double)tok / requests;
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* token_us: the simulated model's pace between streamed tokens (0: none). */
static af_serving *seam_new(uint32_t token_us)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    af_serving *sv = NULL;
    if (af_serving_new(&o, &sv) != 0)
        return NULL;
    af_model_info m = {.id = "zero", .name = "zero", .price_per_1k_tokens = 0.001};
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    so.base_latency_us = so.per_token_latency_us = 0;
    so.stream_token_us = token_us;
    af_model_backend *b = NULL;
    af_instance_opts io = {.id = "zero-1"};
    if (af_serving_register_model(sv, NULL, &m, NULL, 0) != 0 || af_sim_backend_new(&so, &b) != 0 ||
        af_serving_add_instance(sv, "zero", &io, b) != 0) {
        af_serving_free(sv);
        return NULL;
    }
    return sv;
}

/* ---------------------------------------------------------------------------------------- */

/* The daemon's simulated backend below paces its streams at this many us a token, although
 * it says token_interval: 0ms: the daemon takes 0 as "the simulated model's per-token latency"
 * (af_sim_backend_opts.per_token_latency_us, 50 us). The seam's paced runs use the same pace. */
#define DAEMON_TOKEN_US 50

/* %s: tracing.enabled (the seam in this process makes no spans, so the comparison runs
 * without them; a second run shows what the daemon's spans cost on top). */
static const char zero_config[] = "tracing:\n  enabled: %s\n"
                                  "serving:\n  models:\n    - id: zero\n"
                                  "      pricing: {input_per_million: 1, output_per_million: 2}\n"
                                  "      backends:\n        - simulated: true\n"
                                  "          id: zero-1\n          first_token: 0ms\n"
                                  "          token_interval: 0ms\n";

static void traced_run(int requests)
{
    char cfg[sizeof(zero_config) + 8];
    snprintf(cfg, sizeof(cfg), zero_config, "true");
    int port;
    pid_t pid = start_daemon(cfg, &port);
    run_stats hr, h1, h64;
    int streams = requests / 4 > 100 ? requests / 4 : 100;
    if (pid > 0 && http_run(pid, port, http_call, requests, 1, false, 40000000, &hr) == 0 &&
        http_run(pid, port, http_call, streams, 1, true, 50000000, &h1) == 0 &&
        http_run(pid, port, http_call, streams, 64, true, 60000000, &h64) == 0 &&
        h64.tokens > h1.tokens) {
        printf("gateway_traced_http_request_us %.2f us\n", hr.secs * 1e6);
        printf("gateway_traced_http_request_daemon_cpu_us %.2f us\n", hr.cpu_ns / 1e3);
        printf("gateway_traced_http_chunk_daemon_cpu_us %.3f us\n",
               (h64.cpu_ns - h1.cpu_ns) / (h64.tokens - h1.tokens) / 1e3);
    } else {
        printf("# bench_gateway: the traced runs failed\n");
    }
    if (pid > 0)
        stop_daemon(pid);
}

static void per_request_and_chunk(int requests)
{
    char cfg[sizeof(zero_config) + 8];
    snprintf(cfg, sizeof(cfg), zero_config, "false");
    int port;
    pid_t pid = start_daemon(cfg, &port);
    af_serving *sv = seam_new(0), *paced = seam_new(DAEMON_TOKEN_US);
    if (pid < 0 || !sv || !paced) {
        printf("# bench_gateway: could not start the daemon or the in-process gateway\n");
        if (pid > 0)
            stop_daemon(pid);
        af_serving_free(sv);
        af_serving_free(paced);
        return;
    }
    run_stats hh, hr, sr, h1, h64, s1, s64, p1, p64;
    int streams = requests / 4 > 100 ? requests / 4 : 100;
    if (http_run(pid, port, health_call, requests, 0, false, 0, &hh) == 0 &&
        http_run(pid, port, http_call, requests, 1, false, 0, &hr) == 0 &&
        seam_run(sv, requests, 1, false, 0, &sr) == 0) {
        printf("gateway_seam_request_us %.2f us\n", sr.secs * 1e6);
        printf("gateway_http_request_us %.2f us\n", hr.secs * 1e6);
        printf("gateway_http_health_us %.2f us\n", hh.secs * 1e6);
        printf("gateway_seam_request_cpu_us %.2f us\n", sr.cpu_ns / 1e3);
        printf("gateway_http_request_daemon_cpu_us %.2f us\n", hr.cpu_ns / 1e3);
        printf("gateway_http_health_daemon_cpu_us %.2f us\n", hh.cpu_ns / 1e3);
        printf("gateway_request_overhead_us %.2f us\n", (hr.cpu_ns - sr.cpu_ns) / 1e3);
    } else {
        printf("# bench_gateway: the per-request runs failed\n");
    }
    if (http_run(pid, port, http_call, streams, 1, true, 10000000, &h1) == 0 &&
        http_run(pid, port, http_call, streams, 64, true, 20000000, &h64) == 0 &&
        seam_run(sv, streams, 1, true, 10000000, &s1) == 0 &&
        seam_run(sv, streams, 64, true, 20000000, &s64) == 0 && h64.tokens > h1.tokens &&
        s64.tokens > s1.tokens) {
        double htok = h64.tokens - h1.tokens, stok = s64.tokens - s1.tokens;
        printf("gateway_seam_chunk_us %.3f us\n", (s64.secs - s1.secs) / stok * 1e6);
        printf("gateway_http_chunk_us %.3f us\n", (h64.secs - h1.secs) / htok * 1e6);
        printf("gateway_seam_chunk_cpu_us %.3f us\n", (s64.cpu_ns - s1.cpu_ns) / stok / 1e3);
        printf("gateway_http_chunk_daemon_cpu_us %.3f us\n", (h64.cpu_ns - h1.cpu_ns) / htok / 1e3);
        printf("gateway_chunk_overhead_us %.3f us\n",
               ((h64.cpu_ns - h1.cpu_ns) / htok - (s64.cpu_ns - s1.cpu_ns) / stok) / 1e3);
        printf("gateway_stream_tokens_per_call %.1f tokens\n", h64.tokens);
        if (seam_run(paced, streams, 1, true, 10000000, &p1) == 0 &&
            seam_run(paced, streams, 64, true, 20000000, &p64) == 0 && p64.tokens > p1.tokens) {
            double ptok = p64.tokens - p1.tokens;
            printf("gateway_seam_paced_chunk_cpu_us %.3f us\n",
                   (p64.cpu_ns - p1.cpu_ns) / ptok / 1e3);
            printf("gateway_paced_chunk_overhead_us %.3f us\n",
                   ((h64.cpu_ns - h1.cpu_ns) / htok - (p64.cpu_ns - p1.cpu_ns) / ptok) / 1e3);
        }
    } else {
        printf("# bench_gateway: the streamed runs failed\n");
    }
    run_stats q1, q64;
    if (parallel_run(pid, port, streams, 1, 40000000, &q1) == 0 &&
        parallel_run(pid, port, streams, 64, 50000000, &q64) == 0 && q64.tokens > q1.tokens)
        printf("gateway_parallel_chunk_daemon_cpu_us %.3f us\n",
               (q64.cpu_ns - q1.cpu_ns) / (q64.tokens - q1.tokens) / 1e3);
    else
        printf("# bench_gateway: the parallel streamed runs failed\n");
    af_serving_free(sv);
    af_serving_free(paced);
    stop_daemon(pid);
}

/* Occurrences of needle in what a stream read (buf, NUL-terminated), counting one split
 * between this read and the last: carry holds the last strlen(needle) - 1 bytes before. */
static long count_events(char *carry, const char *buf, size_t len, const char *needle)
{
    size_t nl = strlen(needle), keep = nl - 1;
    char joint[64];
    size_t cl = strlen(carry), head = len < keep ? len : keep;
    memcpy(joint, carry, cl);
    memcpy(joint + cl, buf, head);
    joint[cl + head] = '\0';
    long hits = 0;
    /* Only matches that start in the carried bytes: the rest are found in buf itself. */
    for (const char *p = joint; (p = strstr(p, needle)) != NULL && p < joint + cl; p++)
        hits++;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += nl)
        hits++;
    const char *tail = len > keep ? buf + len - keep : buf;
    if (len >= keep) {
        memcpy(carry, tail, keep);
        carry[keep] = '\0';
    } else {
        size_t total = cl + len, drop = total > keep ? total - keep : 0;
        memmove(carry, carry + drop, cl - drop);
        memcpy(carry + cl - drop, buf, len);
        carry[total - drop] = '\0';
    }
    return hits;
}

/* Opens n streams on a slow model and holds them; counts those past their first token while
 * none has finished yet. */
static void concurrent_streams(int n)
{
    static const char slow_config[] = "tracing:\n  enabled: true\n"
                                      "serving:\n  max_streams: 100000\n  models:\n"
                                      "    - id: zero\n      backends:\n"
                                      "        - simulated: true\n          id: slow-1\n"
                                      "          first_token: 10ms\n"
                                      "          token_interval: 100ms\n";
    int port;
    pid_t pid = start_daemon(slow_config, &port);
    if (pid < 0) {
        printf("# bench_gateway: could not start the daemon\n");
        return;
    }
    int *fds = calloc((size_t)n, sizeof(int));
    /* The delta events seen (a role event's "content":"" counts too: one per stream, taken off
     * below), with each stream's last bytes kept so an event split between reads counts. */
    static const char needle[] = "\"content\":\"";
    char(*carry)[sizeof(needle)] = calloc((size_t)n, sizeof(*carry));
    long events = 0;
    bool *started = calloc((size_t)n, sizeof(bool)), *ended = calloc((size_t)n, sizeof(bool));
    struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
    int opened = 0;
    for (int i = 0; i < n; i++) {
        char req[512];
        int len = request(req, sizeof(req), 30000000 + i, 40, true);
        fds[i] = connect_to(port);
        if (fds[i] < 0)
            break;
        if (send(fds[i], req, (size_t)len, MSG_NOSIGNAL) != len) {
            close(fds[i]);
            break;
        }
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        opened++;
    }
    double cpu0 = cpu_seconds(pid), t0 = now_s(), deadline = t0 + 30;
    int n_started = 0, n_ended = 0, held = 0;
    double rss = 0;
    char buf[8192];
    while (n_ended < opened && now_s() < deadline) {
        for (int i = 0; i < opened; i++)
            pf[i] = (struct pollfd){.fd = ended[i] ? -1 : fds[i], .events = POLLIN};
        if (poll(pf, (nfds_t)opened, 200) < 0)
            break;
        for (int i = 0; i < opened; i++) {
            if (ended[i] || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(fds[i], buf, sizeof(buf) - 1, 0);
            if (r > 0) {
                buf[r] = '\0';
                events += count_events(carry[i], buf, (size_t)r, needle);
                if (!started[i] && strstr(buf, "\"content\":")) {
                    started[i] = true;
                    n_started++;
                }
                if (r >= 5 && memcmp(buf + r - 5, "0\r\n\r\n", 5) == 0) {
                    ended[i] = true;
                    n_ended++;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                ended[i] = true;
                n_ended++;
            }
        }
        if (n_ended == 0 && n_started > held) {
            held = n_started;
            rss = rss_mib(pid);
        }
    }
    double secs = now_s() - t0, cpu = cpu_seconds(pid) - cpu0;
    printf("gateway_concurrent_streams %d streams\n", held);
    printf("gateway_concurrent_streams_opened %d connections\n", opened);
    printf("gateway_concurrent_streams_completed %d streams\n", n_ended);
    printf("gateway_concurrent_daemon_rss_mib %.1f MiB\n", rss);
    printf("gateway_concurrent_daemon_cpu_pct %.1f %%\n", secs > 0 ? 100.0 * cpu / secs : 0.0);
    long tokens = events - n_started;
    printf("gateway_concurrent_tokens %ld tokens\n", tokens);
    if (tokens > 0)
        printf("gateway_concurrent_daemon_cpu_per_token_us %.2f us\n", cpu * 1e6 / (double)tokens);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    free(carry);
    free(started);
    free(ended);
    free(pf);
    stop_daemon(pid);
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    /* The daemon is the agentaflow next to this program. */
    ssize_t n = readlink("/proc/self/exe", g_bin, sizeof(g_bin) - 16);
    if (n <= 0)
        return 1;
    g_bin[n] = '\0';
    char *slash = strrchr(g_bin, '/');
    if (!slash)
        return 1;
    strcpy(slash + 1, "agentaflow");
    if (access(g_bin, X_OK) != 0) {
        printf("# bench_gateway: %s not found (build the agentaflow target)\n", g_bin);
        return 0;
    }
    (void)argv;
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-bench-gw-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    /* Two descriptors per stream (this side and the daemon's), with room to spare. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    per_request_and_chunk(env_int("BENCH_REQUESTS", 2000));
    traced_run(env_int("BENCH_REQUESTS", 2000));
    concurrent_streams(env_int("BENCH_STREAMS", 1000));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
