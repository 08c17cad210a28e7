/* The integration tests' shared harness; see harness.h. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *g_bin;
char g_tmp[256];

int harness_init(int argc, char **argv, const char *prog)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s /path/to/agentaflow\n", prog);
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-%s-XXXXXX", prog);
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

void harness_fini(void)
{
    curl_global_cleanup();
}

const char *const it_base_config = "service_name: agentaflow-it\n"
                                   "server:\n"
                                   "  ws_push_interval: 200ms\n"
                                   "  load_generator: false\n";

daemon_t g_shared;

int shared_daemon_setup(void **state)
{
    (void)state;
    daemon_start(&g_shared, it_base_config, NULL, NULL);
    return 0;
}

int shared_daemon_teardown(void **state)
{
    (void)state;
    int rc = daemon_stop(&g_shared);
    if (rc != 0) {
        fprintf(stderr, "daemon exit status %d (want 0)\n", rc);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Daemon process.                                                                           */

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pause_ms(int ms)
{
    poll(NULL, 0, ms);
}

void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* daemon_start with RLIMIT_NOFILE set to nofile in the child before exec (0 = inherited). */
static void spawn(daemon_t *d, const char *role, const char *config, const char *const *extra,
                  const char *const *env, rlim_t nofile)
{
    static int seq;
    memset(d, 0, sizeof(*d));
    char cfgpath[512];
    snprintf(cfgpath, sizeof(cfgpath), "%s/cfg-%d.yaml", g_tmp, ++seq);
    snprintf(d->portfile, sizeof(d->portfile), "%s/ports-%d", g_tmp, seq);
    snprintf(d->logfile, sizeof(d->logfile), "%s/daemon-%d.log", g_tmp, seq);
    if (config)
        write_file(cfgpath, config);
    const char *argv[32];
    int n = 0;
    argv[n++] = g_bin;
    argv[n++] = role;
    if (config) {
        argv[n++] = "--config";
        argv[n++] = cfgpath;
    }
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--metrics-port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = d->portfile;
    argv[n++] = "--gpu-backend";
    argv[n++] = "simulated";
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        int fd = open(d->logfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        /* Persistence is off unless a test asks for it (env or --data-dir), so tests leave
         * no data directory behind. */
        setenv("AGENTAFLOW_DATA_DIR", ":memory:", 0);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (nofile) {
            struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(126);
        }
        execv(g_bin, (char *const *)argv);
        _exit(127);
    }
    uint64_t deadline = now_ms() + 20000;
    while (now_ms() < deadline) {
        FILE *f = fopen(d->portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d %d", &d->port, &d->mport);
            fclose(f);
            if (ok == 2)
                return;
        }
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            fail_msg("daemon exited early (see %s)", d->logfile);
        pause_ms(20);
    }
    fail_msg("daemon did not report its ports (see %s)", d->logfile);
}

void daemon_start(daemon_t *d, const char *config, const char *const *extra, const char *const *env)
{
    spawn(d, "serve", config, extra, env, 0);
}

void daemon_start_nofile(daemon_t *d, const char *config, const char *const *extra,
                         const char *const *env, unsigned long nofile)
{
    spawn(d, "serve", config, extra, env, (rlim_t)nofile);
}

void daemon_start_role(daemon_t *d, const char *role, const char *config, const char *const *extra,
                       const char *const *env)
{
    spawn(d, role, config, extra, env, 0);
}

/* SIGTERM, then the exit status (bounded wait). */
int daemon_stop(daemon_t *d)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    uint64_t deadline = now_ms() + 15000;
    int st = 0;
    while (now_ms() < deadline) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        pause_ms(20);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

/* Runs the binary to completion; returns the exit code and stdout+stderr in *out. */
int run_cmd(const char *const *args, const char *const *env, char **out)
{
    char logp[512];
    snprintf(logp, sizeof(logp), "%s/run.log", g_tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("AGENTAFLOW_DATA_DIR", ":memory:", 0);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(g_bin, (char *const *)args);
        _exit(127);
    }
    int st = 0;
    uint64_t deadline = now_ms() + 30000;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        pause_ms(20);
    }
    FILE *f = fopen(logp, "r");
    static char buf[65536];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP.                                                                                     */

static size_t on_body(void *p, size_t sz, size_t n, void *u)
{
    resp *r = u;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    resp *r = u;
    size_t k = sz * n;
    if (r->hlen + k < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

/* headers: NULL-terminated list of "Name: value". */
resp http(int port, const char *method, const char *path, const char *body,
          const char *const *headers)
{
    resp r;
    memset(&r, 0, sizeof(r));
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    bool has_ct = false;
    for (int i = 0; headers && headers[i]; i++) {
        h = curl_slist_append(h, headers[i]);
        has_ct |= strncasecmp(headers[i], "content-type:", 13) == 0;
    }
    /* The daemon takes only JSON bodies on writes; curl would say form-urlencoded. */
    if (body && !has_ct)
        h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = calloc(1, 1);
    return r;
}

json_t *json_of(const resp *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %.300s", e.text, r->body);
    return j;
}

json_t *get_json(int port, const char *path, long want)
{
    resp r = http(port, "GET", path, NULL, NULL);
    if (r.status != want)
        fail_msg("GET %s: %ld, want %ld: %.300s", path, r.status, want, r.body);
    json_t *j = json_of(&r);
    free(r.body);
    return j;
}

void expect_error(const resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("status %ld, want %ld: %.300s", r->status, status, r->body);
    json_t *j = json_of(r);
    json_t *err = json_object_get(j, "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_non_null(json_string_value(json_object_get(err, "message")));
    json_decref(j);
}

const char *header(const resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            size_t k = strcspn(p, "\r\n");
            snprintf(out, cap, "%.*s", (int)k, p);
            return out;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* A minimal WebSocket client.                                                               */

/* rcvbuf > 0: the receive buffer, set before connecting so the advertised window is small
 * from the start (a client that stops reading then fills the server's socket quickly). */
int ws_connect_rcvbuf(int port, const char *origin, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     port, origin ? "Origin: " : "", origin ? origin : "", origin ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    /* Read the 101 response byte by byte so no frame byte is consumed. */
    char buf[2048];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t k = read(fd, buf + got, 1);
        if (k <= 0)
            break;
        got++;
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int ws_connect(int port, const char *origin)
{
    return ws_connect_rcvbuf(port, origin, 0);
}

static int read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Reads one frame; returns the opcode (1 text, 8 close, ...) or -1; payload malloc'd. */
int ws_read(int fd, char **payload, size_t *len)
{
    unsigned char h[2];
    if (read_full(fd, h, 2) != 0)
        return -1;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        unsigned char e[2];
        if (read_full(fd, e, 2) != 0)
            return -1;
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        unsigned char e[8];
        if (read_full(fd, e, 8) != 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | e[i];
    }
    char *p = malloc(n + 1);
    if (!p || read_full(fd, p, n) != 0) {
        free(p);
        return -1;
    }
    p[n] = '\0';
    *payload = p;
    *len = n;
    return h[0] & 0x0f;
}

int ws_send(int fd, const char *text)
{
    size_t n = strlen(text);
    unsigned char f[14 + 1024];
    if (n > 1024)
        return -1;
    size_t k = 0;
    f[k++] = 0x81;
    if (n < 126) {
        f[k++] = (unsigned char)(0x80 | n);
    } else {
        f[k++] = 0x80 | 126;
        f[k++] = (unsigned char)(n >> 8);
        f[k++] = (unsigned char)n;
    }
    unsigned char mask[4] = {1, 2, 3, 4};
    memcpy(f + k, mask, 4);
    k += 4;
    for (size_t i = 0; i < n; i++)
        f[k++] = (unsigned char)text[i] ^ mask[i % 4];
    return write(fd, f, k) == (ssize_t)k ? 0 : -1;
}

/* Reads text frames until one of `type` arrives (bounded by the socket timeout). */
json_t *ws_expect(int fd, const char *type)
{
    for (int i = 0; i < 200; i++) {
        char *p = NULL;
        size_t n = 0;
        int op = ws_read(fd, &p, &n);
        if (op < 0)
            return NULL;
        if (op == 1) {
            json_t *j = json_loads(p, 0, NULL);
            free(p);
            const char *t = j ? json_string_value(json_object_get(j, "type")) : NULL;
            if (t && strcmp(t, type) == 0)
                return j;
            json_decref(j);
            continue;
        }
        free(p);
        if (op == 8)
            return NULL;
    }
    return NULL;
}

/* A simulated inference that takes about `ms` (50 us per prompt token, 4 bytes a token). */
char *slow_infer_request(int port, int ms, int seq)
{
    size_t chars = (size_t)ms * 80;
    size_t cap = chars + 512;
    char *body = malloc(cap);
    assert_non_null(body);
    int n = snprintf(body, cap, "{\"model_id\":\"model-gpt\",\"input\":\"slow %d ", seq);
    memset(body + n, 'x', chars);
    snprintf(body + n + chars, cap - (size_t)n - chars, "\"}");
    size_t blen = strlen(body);
    char *req = malloc(blen + 512);
    assert_non_null(req);
    snprintf(req, blen + 512,
             "POST /api/v1/inference HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
             port, blen, body);
    free(body);
    return req;
}

/* Connects to 127.0.0.1:port; -1 with errno when refused. */
int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        assert_true(k > 0);
        p += k;
        n -= (size_t)k;
    }
}

/* Reads until EOF (the requests say Connection: close); malloc'd, NUL-terminated. */
char *read_to_eof(int fd)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    assert_non_null(b);
    for (;;) {
        if (len + 1024 > cap)
            b = realloc(b, cap *= 2);
        assert_non_null(b);
        ssize_t k = read(fd, b + len, cap - len - 1);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    b[len] = '\0';
    return b;
}

/* Model-serving requests queued or running, from /health. */
long serving_busy(int port)
{
    json_t *h = get_json(port, "/health", 200);
    json_t *m = json_object_get(json_object_get(h, "components"), "model_serving");
    long n = (long)(json_integer_value(json_object_get(m, "in_flight")) +
                    json_integer_value(json_object_get(m, "pending_requests")));
    json_decref(h);
    return n;
}

/* A sample's value from the Prometheus exposition (-1 when absent). */
double metric_value(int mport, const char *name)
{
    resp r = http(mport, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v = -1;
    size_t nl = strlen(name);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            v = strtod(p + nl + 1, NULL);
            break;
        }
    free(r.body);
    return v;
}
