/*
 * server/guard.h - the request gate (docs/security.md): what every request must satisfy
 * before it is routed or handed to the WebSocket, whichever listener it came in on.
 *
 *   - Host allow-list against DNS rebinding (421),
 *   - cross-site writes (Origin, Sec-Fetch-Site: 403) and non-JSON write bodies (415),
 *   - malformed query strings (invalid escapes or %00: 400 naming the parameter),
 *   - the bearer token for the /ws upgrade when reads need it (401),
 *   - and, for the loops, what to do when the process runs out of descriptors.
 *
 * The checks over a parsed head are pure (no server, no I/O) so they are unit-tested on their
 * own; http_accept.c, http_conn.c and txn.c call them through a few named hooks.
 */
#ifndef AF_SERVER_GUARD_H
#define AF_SERVER_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/server.h"
#include "server/http_parse.h"

typedef struct af__guard {
    char **hosts; /* server.allowed_hosts, copied; "name" or "name:port" */
    size_t n_hosts;
    char *bound;       /* the bind address when it is neither loopback nor a wildcard, and no
                        * allowed_hosts were given: Host may name it; else NULL */
    const char *token; /* borrowed from the server: NULL = no token configured */
    bool auth_read;
    /* Descriptor exhaustion: a descriptor held back so an accept can still succeed (and be
     * answered 503) when the process is out of them; -1 when it could not be opened. */
    _Atomic int reserve_fd;
    _Atomic uint64_t paused_until; /* monotonic ns: every listener stays paused until then */
} af__guard;

/* Copies the allow-list from o; bind_address is the server's (never NULL). token is borrowed
 * for the guard's life. 0 or -ENOMEM. */
int af__guard_init(af__guard *g, const af_server_opts *o, const char *bind_address,
                   const char *token);
void af__guard_free(af__guard *g);

/* What the gate refuses a request with: the status, the error code and a sentence. */
typedef struct af__guard_deny {
    int status;
    const char *code; /* static */
    char message[192];
} af__guard_deny;

/* The gate: req arrived on a listener bound to port (metrics: the Prometheus one); ws: it is
 * the /ws upgrade. 0 = pass; otherwise *d says how to refuse it. */
int af__guard_check(const af__guard *g, const af__http_request *req, int port, bool metrics,
                    bool ws, af__guard_deny *d);

/* The pieces, for tests. */
bool af__guard_host_ok(const af__guard *g, const char *host, size_t n, int port);
bool af__guard_origin_ok(const af__guard *g, const char *origin, size_t on, const char *host,
                         size_t hn);
bool af__guard_json_type(const char *ct, size_t n);
/* true when token is configured and got equals it; constant time in got's content. */
bool af__guard_token_eq(const char *token, const char *got, size_t got_len);
/* An Authorization value "Bearer <token>" (scheme case-insensitive). No token configured:
 * true. */
bool af__guard_bearer_ok(const char *token, const char *authorization, size_t n);
/* The first query parameter whose value does not decode (bad escape, %00): its name
 * (truncated) into bad; false then. */
bool af__guard_query_ok(const char *q, size_t n, char *bad, size_t cap);

/* Redaction: target with every query value replaced by "REDACTED" (names kept), into out
 * (NUL-terminated, truncated at a parameter boundary with "&..." when it does not fit).
 * Returns the length written. */
size_t af__guard_redact_target(const char *target, size_t n, char *out, size_t cap);

/* Descriptor exhaustion, called by a loop when accept() failed with EMFILE/ENFILE: gives the
 * reserve descriptor up for a moment to accept one waiting connection, answers it 503 and
 * closes it, then takes the reserve back. Returns true when a connection was shed. */
bool af__guard_shed(af__guard *g, int listen_fd);
/* Takes the reserve descriptor back when a shed could not (called once a descriptor was
 * freed). */
void af__guard_rearm(af__guard *g);

#endif
