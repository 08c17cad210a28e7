/*
 * server/http_int.h - what the HTTP loop files (http_loop.c, http_accept.c, http_conn.c,
 * http_resp.c) share among themselves; the rest of the server uses server_int.h.
 *
 * Threads: everything here runs on the loop thread that owns the loop or connection. A
 * connection is owned by its loop; af__conn_free releases it (only from the loop's dead list).
 */
#ifndef AF_SERVER_HTTP_INT_H
#define AF_SERVER_HTTP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/server_int.h"

/* http_accept.c */
/* Adds fd to the loop's epoll set with tag as its data; negative errno on failure. */
int af__loop_watch(af__loop *l, int fd, uint32_t events, void *tag);
/* The API and metrics listeners join (true) or leave (false) this loop's epoll set. */
void af__loop_listen_set(af__loop *l, bool api, bool metrics);
/* An epoll event's tag: a listener's is served (its waiting connections accepted) and true
 * returned; any other tag gives false. */
bool af__loop_accept_event(af__loop *l, void *tag, uint64_t now);

/* http_conn.c */
void af__conn_timed_remove(af__conn *c);
/* The connection's deadline becomes now + the idle bound. */
void af__conn_timed_restart(af__conn *c, uint64_t now);
/* A new connection joins its loop's list of open ones. */
void af__conn_all_add(af__conn *c);
/* Frees a retired connection's memory. */
void af__conn_free(af__conn *c);
/* Asks epoll for the readiness the connection waits for now. */
void af__conn_update_events(af__conn *c);
/* Shuts our side down and drops what the client still sends until it closes. */
void af__conn_linger(af__conn *c);
/* As send() without SIGPIPE, through the TLS session when there is one. */
ssize_t af__conn_send(af__conn *c, const void *buf, size_t len);
/* Sends what is pending; false when the connection closed. */
bool af__conn_flush(af__conn *c, uint64_t now);
/* Reads what the socket holds and handles the complete requests in it. */
void af__conn_read(af__conn *c);
/* The connection's epoll event ev. */
void af__conn_event(af__conn *c, uint32_t ev, uint64_t now);

/* http_resp.c */
/* A request refused before it became a transaction: the error, then the connection closes. */
void af__conn_fail(af__conn *c, int status, const char *code, const char *message);
/* The transaction's body failed to frame: answers its error and closes. */
void af__conn_body_fail(af__conn *c, int status, const char *message);
/* The error code of a framing failure's HTTP status ("bad_request" by default). */
const char *af__http_code_for(int status);

#endif
