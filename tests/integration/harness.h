/*
 * tests/integration/harness.h - what the daemon integration tests share: the real agentaflow
 * binary started on ephemeral loopback ports with a temporary config, an HTTP client (libcurl),
 * a minimal RFC 6455 client (so a test can also play a client that never reads) and raw TCP
 * helpers for framing tests. Every wait polls with a deadline; nothing sleeps blindly.
 *
 * A test program's main calls harness_init (g_bin = argv[1], g_tmp = a mkdtemp directory)
 * and harness_fini.
 */
#ifndef AF_IT_HARNESS_H
#define AF_IT_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"

extern const char *g_bin;
extern char g_tmp[256];

typedef struct daemon {
    pid_t pid;
    int port, mport;
    char portfile[512];
    char logfile[512];
} daemon_t;

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
} resp;

/* argv[1] is the daemon binary (g_bin); makes g_tmp, ignores SIGPIPE, initialises libcurl.
 * 0, or the exit code main should return (usage error, no temporary directory). */
int harness_init(int argc, char **argv, const char *prog);
void harness_fini(void);

/* The config most tests start from: no load generator, a fast WebSocket push. */
extern const char *const it_base_config;

/* One daemon (it_base_config) shared by a group of read-mostly tests: the group's cmocka
 * setup and teardown; teardown fails the group when the daemon does not exit 0. */
extern daemon_t g_shared;
int shared_daemon_setup(void **state);
int shared_daemon_teardown(void **state);

uint64_t now_ms(void);

void pause_ms(int ms);

void write_file(const char *path, const char *text);

/* Starts the daemon with `config` text (NULL = none) and extra args; env "K=V" pairs. */
void daemon_start(daemon_t *d, const char *config, const char *const *extra,
                  const char *const *env);

/* daemon_start with the daemon's descriptor limit (RLIMIT_NOFILE, soft and hard) set to
 * nofile in the child before exec. */
void daemon_start_nofile(daemon_t *d, const char *config, const char *const *extra,
                         const char *const *env, unsigned long nofile);

/* daemon_start for another subcommand of the binary ("agent"), with the same port flags. */
void daemon_start_role(daemon_t *d, const char *role, const char *config, const char *const *extra,
                       const char *const *env);

/* SIGTERM, then the exit status (bounded wait). */
int daemon_stop(daemon_t *d);

/* Runs the binary to completion; returns the exit code and stdout+stderr in *out. */
int run_cmd(const char *const *args, const char *const *env, char **out);

/* headers: NULL-terminated list of "Name: value". */
resp http(int port, const char *method, const char *path, const char *body,
          const char *const *headers);

json_t *json_of(const resp *r);

json_t *get_json(int port, const char *path, long want);

void expect_error(const resp *r, long status, const char *code);

const char *header(const resp *r, const char *name, char *out, size_t cap);

/* rcvbuf > 0: the receive buffer, set before connecting so the advertised window is small
 * from the start (a client that stops reading then fills the server's socket quickly). */
int ws_connect_rcvbuf(int port, const char *origin, int rcvbuf);

int ws_connect(int port, const char *origin);

/* Reads one frame; returns the opcode (1 text, 8 close, ...) or -1; payload malloc'd. */
int ws_read(int fd, char **payload, size_t *len);

int ws_send(int fd, const char *text);

/* Reads text frames until one of `type` arrives (bounded by the socket timeout). */
json_t *ws_expect(int fd, const char *type);

/* A simulated inference that takes about `ms` (50 us per prompt token, 4 bytes a token). */
char *slow_infer_request(int port, int ms, int seq);

/* Connects to 127.0.0.1:port; -1 with errno when refused. */
int tcp_connect(int port);

void send_all(int fd, const char *p, size_t n);

/* Reads until EOF (the requests say Connection: close); malloc'd, NUL-terminated. */
char *read_to_eof(int fd);

/* Model-serving requests queued or running, from /health. */
long serving_busy(int port);

/* A sample's value from the Prometheus exposition (-1 when absent). */
double metric_value(int mport, const char *name);

#endif
