/*
 * The HTTP listeners and the accept path (http_loop.c describes the loops as a whole).
 *
 * The API and metrics listeners are in every loop's epoll set with EPOLLEXCLUSIVE. Out of
 * descriptors, accepting pauses on every loop, and the client at the head of the backlog is
 * answered 503 through the guard's reserve descriptor (guard.c).
 */
#define AF_LOG_COMPONENT "http"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "server/http_int.h"
#include "server/server_int.h"
#include "server/tls.h"

#define AF__ACCEPT_BATCH 64 /* connections accepted per wake-up */

/* epoll tags of the listeners. */
static char tag_api, tag_metrics;

/* ---------------------------------------------------------------------------------------- */
/* Listeners.                                                                                */

int af__http_listen(const char *addr, int port, int *fd_out, int *port_out, char *err,
                    size_t err_len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gai = getaddrinfo(addr, ps, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", addr, port, gai_strerror(gai));
        return -EINVAL;
    }
    int rc = -EADDRNOTAVAIL, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", addr, port, strerror(-rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int af__loop_watch(af__loop *l, int fd, uint32_t events, void *tag)
{
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* A listener joins or leaves this loop's epoll set (EPOLLEXCLUSIVE registrations cannot be
 * modified, only deleted and added again). */
static void listen_one(af__loop *l, int fd, void *tag, bool *state, bool on)
{
    if (*state == on || fd < 0)
        return;
    if (on)
        af__loop_watch(l, fd, EPOLLIN | EPOLLEXCLUSIVE, tag);
    else
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    *state = on;
}

void af__loop_listen_set(af__loop *l, bool api, bool metrics)
{
    af_server *s = l->srv;
    listen_one(l, s->api_fd, &tag_api, &l->listening, api);
    listen_one(l, s->metrics_fd, &tag_metrics, &l->listening_metrics, metrics);
}

/* Out of descriptors (or socket memory): every loop stops accepting on every listener until
 * `until` or until a connection closes, whichever comes first. A listener left in an epoll set
 * stays readable while its backlog waits, so any loop still watching it would spin. */
static void accept_pause(af__loop *l, uint64_t until)
{
    af_server *s = l->srv;
    atomic_store(&s->guard.paused_until, until);
    af__loop_listen_set(l, false, false);
    for (unsigned i = 0; i < s->n_loops; i++)
        if (&s->loops[i] != l)
            af__loop_wake(&s->loops[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Accepting.                                                                                */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        /* Dotted quad by hand: glibc's inet_ntop goes through sprintf. */
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        char *p = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)cap);
    }
}

static void on_accept(af__loop *l, int lfd, bool metrics, uint64_t now)
{
    af_server *s = l->srv;
    for (int i = 0; i < AF__ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                if (now >= l->accept_warned_until) {
                    af_log(AF_LOG_WARN,
                           "server: cannot accept connections: %s (%u open on this loop); "
                           "raise the descriptor limit (ulimit -n)",
                           strerror(e), l->n_conns);
                    l->accept_warned_until = now + 10000000000ull;
                }
                /* The client waiting at the head of the backlog gets a 503 through the
                 * reserve descriptor instead of hanging until it gives up. */
                if (e == EMFILE || e == ENFILE)
                    af__guard_shed(&s->guard, lfd);
                accept_pause(l, now + 100000000ull);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        af__conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->loop = l;
        c->fd = fd;
        c->metrics = metrics;
        if (l->srv->tls && !(c->ssl = af__tls_session(l->srv->tls, fd))) {
            close(fd);
            free(c);
            continue;
        }
        c->state = AF__CONN_HEAD;
        c->events = EPOLLIN | EPOLLRDHUP;
        af__buf_init(&c->rx);
        af__buf_init(&c->tx);
        af__buf_init(&c->txn.body);
        af__resp_init(&c->txn.resp);
        c->txn.span = AF_SPAN_NONE;
        format_peer(&ss, c->peer, sizeof(c->peer));
        if (af__loop_watch(l, fd, c->events, c) != 0) {
            af__tls_close(c->ssl);
            close(fd);
            af__resp_free(&c->txn.resp);
            free(c);
            continue;
        }
        af__conn_all_add(c);
        af__conn_timed_restart(c, now);
    }
}

bool af__loop_accept_event(af__loop *l, void *tag, uint64_t now)
{
    if (tag == &tag_api)
        on_accept(l, l->srv->api_fd, false, now);
    else if (tag == &tag_metrics)
        on_accept(l, l->srv->metrics_fd, true, now);
    else
        return false;
    return true;
}
