/*
 * test_server_gw_out.c - the coalesced hand-off of a front-door stream's output
 * (server/gw_out.h) and the one write a loop turn makes of it (af__conn_stream_send): deltas
 * added before a take come out in order as one buffer and one write; a take or a send with
 * nothing pending does nothing; a dropped (cancelled) stream's pending deltas go; the loop is
 * woken once per wait for all its streams, and never while it is busy; output the socket does
 * not take waits for EPOLLOUT under the write-progress deadline and leaves when it is read.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/gw_out.h"
#include "server/http_int.h"
#include "server/openai_json.h"
#include "server/server_int.h"

/* A delta event's frame, as routes_openai.c builds it. */
typedef struct frame {
    af_buf b;
    size_t prefix_len;
} frame;

static void frame_init(frame *f)
{
    af__oai_ids ids = {.id = "chatcmpl-1", .model = "m", .created = 1, .chat = true};
    af__buf_init(&f->b);
    af__oai_delta_prefix(&f->b, &ids);
    f->prefix_len = f->b.len;
    af__oai_delta_suffix(&f->b, &ids);
}

static bool add(af__gw_out *o, const frame *f, const char *text)
{
    pthread_mutex_lock(&o->mu);
    bool q = af__gw_out_add_locked(o, (const char *)f->b.data, f->prefix_len,
                                   (const char *)f->b.data + f->prefix_len,
                                   f->b.len - f->prefix_len, text, strlen(text));
    pthread_mutex_unlock(&o->mu);
    return q;
}

static const af_buf *take(af__gw_out *o)
{
    pthread_mutex_lock(&o->mu);
    const af_buf *b = af__gw_out_take_locked(o);
    pthread_mutex_unlock(&o->mu);
    return b;
}

/* The events the taken bytes hold, each event's delta text checked in order. */
static void expect_tokens(const char *s, size_t len, int first, int n)
{
    const char *end = s + len;
    for (int i = first; i < first + n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "\"content\":\"tok%d\"", i);
        const char *ev_end = memmem(s, (size_t)(end - s), "\n\n", 2);
        assert_non_null(ev_end);
        assert_memory_equal(s, "data: {", 7);
        char *hit = memmem(s, (size_t)(ev_end - s), want, strlen(want));
        assert_non_null(hit);
        s = ev_end + 2;
    }
    assert_ptr_equal(s, end);
}

static void test_deltas_come_out_in_order_as_one_write(void **state)
{
    (void)state;
    frame f;
    frame_init(&f);
    af__gw_out o;
    assert_int_equal(af__gw_out_init(&o, 1u << 20), 0);
    /* Only the first delta asks for the stream to be queued; the rest join it. */
    for (int i = 0; i < 50; i++) {
        char t[16];
        snprintf(t, sizeof(t), "tok%d", i);
        assert_int_equal(add(&o, &f, t), i == 0);
    }
    const af_buf *b = take(&o);
    assert_false(o.queued);
    expect_tokens((const char *)b->data, b->len, 0, 50);

    /* The loop's turn sends them as one chunk with one write: a SEQPACKET socket keeps each
     * write one message. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    af__conn c;
    memset(&c, 0, sizeof(c));
    c.fd = sv[0];
    af__buf_init(&c.tx);
    struct iovec parts[3] = {{NULL, 0}, {b->data, b->len}, {NULL, 0}};
    af__conn_stream_send(&c, NULL, 0, parts, 3, false);
    assert_int_equal(c.tx.len, c.tx_off); /* nothing waits */
    static char got[1 << 17];
    ssize_t n = recv(sv[1], got, sizeof(got), MSG_DONTWAIT);
    assert_true(n > 0);
    char line[24];
    int ll = snprintf(line, sizeof(line), "%zx\r\n", b->len);
    assert_int_equal((size_t)n, (size_t)ll + b->len + 2);
    assert_memory_equal(got, line, (size_t)ll);
    assert_memory_equal(got + ll, b->data, b->len);
    assert_memory_equal(got + ll + b->len, "\r\n", 2);
    assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1); /* one write only */
    assert_int_equal(errno, EAGAIN);

    /* The next delta after a take asks for the queue again. */
    assert_true(add(&o, &f, "tok50"));
    b = take(&o);
    expect_tokens((const char *)b->data, b->len, 50, 1);

    af__buf_clear(&c.tx);
    close(sv[0]);
    close(sv[1]);
    af__gw_out_destroy(&o);
    af__buf_clear(&f.b);
}

static void test_flush_with_nothing_pending_does_nothing(void **state)
{
    (void)state;
    af__gw_out o;
    assert_int_equal(af__gw_out_init(&o, 1u << 20), 0);
    const af_buf *b = take(&o);
    assert_int_equal(b->len, 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    af__conn c;
    memset(&c, 0, sizeof(c));
    c.fd = sv[0];
    af__buf_init(&c.tx);
    struct iovec parts[3] = {{NULL, 0}, {b->data, b->len}, {NULL, 0}};
    af__conn_stream_send(&c, NULL, 0, parts, 3, false);
    char got[64];
    assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(c.tx.len, 0);
    close(sv[0]);
    close(sv[1]);
    af__gw_out_destroy(&o);
}

static void test_dropped_stream_loses_its_pending_deltas(void **state)
{
    (void)state;
    frame f;
    frame_init(&f);
    af__gw_out o;
    assert_int_equal(af__gw_out_init(&o, 1u << 20), 0);
    assert_true(add(&o, &f, "tok0"));
    assert_false(add(&o, &f, "tok1"));
    pthread_mutex_lock(&o.mu);
    af__gw_out_drop_locked(&o);
    pthread_mutex_unlock(&o.mu);
    assert_int_equal(take(&o)->len, 0);
    /* After the cancel nothing is added and nothing asks for a take. */
    assert_false(add(&o, &f, "tok2"));
    pthread_mutex_lock(&o.mu);
    assert_false(af__gw_out_mark_locked(&o));
    pthread_mutex_unlock(&o.mu);
    assert_int_equal(take(&o)->len, 0);
    af__gw_out_destroy(&o);
    af__buf_clear(&f.b);
}

static void test_overflow_stops_the_output(void **state)
{
    (void)state;
    frame f;
    frame_init(&f);
    af__gw_out o;
    assert_int_equal(af__gw_out_init(&o, 1024), 0);
    assert_true(add(&o, &f, "tok0"));
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(add(&o, &f, big)); /* already queued: the loop sees the overflow */
    assert_true(o.overflow);
    const af_buf *b = take(&o);
    expect_tokens((const char *)b->data, b->len, 0, 1);
    assert_false(add(&o, &f, "tok1")); /* stopped */
    assert_int_equal(take(&o)->len, 0);
    af__gw_out_destroy(&o);
    af__buf_clear(&f.b);
}

static void test_queue_wakes_once_per_wait(void **state)
{
    (void)state;
    af__gw_queue q;
    af__gw_queue_init(&q);
    af__gw_out a, b, c;
    assert_int_equal(af__gw_out_init(&a, 1024), 0);
    assert_int_equal(af__gw_out_init(&b, 1024), 0);
    assert_int_equal(af__gw_out_init(&c, 1024), 0);
    /* A busy loop is not woken: it looks at the queue before it waits. */
    assert_false(af__gw_queue_push(&q, &a));
    assert_false(af__gw_queue_sleep(&q));
    af__gw_out *o = af__gw_queue_take(&q);
    assert_ptr_equal(o, &a);
    assert_null(o->next);
    /* A waiting loop is woken by the first push only, for all the streams queued. */
    assert_true(af__gw_queue_sleep(&q));
    assert_true(af__gw_queue_push(&q, &b));
    assert_false(af__gw_queue_push(&q, &c));
    af__gw_queue_woke(&q);
    assert_false(af__gw_queue_push(&q, &a));
    o = af__gw_queue_take(&q);
    assert_ptr_equal(o, &b); /* oldest first */
    assert_ptr_equal(o->next, &c);
    assert_ptr_equal(o->next->next, &a);
    assert_null(af__gw_queue_take(&q));
    assert_true(af__gw_queue_sleep(&q));
    assert_true(af__gw_queue_push(&q, &a)); /* a new wait: a new wake-up */
    af__gw_queue_woke(&q);
    af__gw_out_destroy(&a);
    af__gw_out_destroy(&b);
    af__gw_out_destroy(&c);
}

static void test_output_that_waits_is_sent_when_read(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    af__loop l;
    memset(&l, 0, sizeof(l));
    l.epfd = epoll_create1(0);
    assert_true(l.epfd >= 0);
    af__conn c;
    memset(&c, 0, sizeof(c));
    c.fd = sv[0];
    c.loop = &l;
    c.state = AF__CONN_BUSY; /* a stream in progress */
    c.events = EPOLLRDHUP;
    af__buf_init(&c.tx);
    struct epoll_event ev = {.events = c.events, .data.ptr = &c};
    assert_int_equal(epoll_ctl(l.epfd, EPOLL_CTL_ADD, c.fd, &ev), 0);
    static char big[256 * 1024];
    memset(big, 'x', sizeof(big));
    struct iovec part = {big, sizeof(big)};
    af__conn_stream_send(&c, NULL, 0, &part, 1, false);
    /* The socket took part of it: the rest waits for EPOLLOUT, under the deadline. */
    assert_true(c.tx.len > c.tx_off);
    assert_true(c.events & EPOLLOUT);
    assert_true(c.timed);
    /* The client reads: each EPOLLOUT moves more, until all of it left. */
    static char got[sizeof(big) + 64];
    size_t n = 0;
    for (int i = 0; i < 100000 && (c.tx.len > c.tx_off || n < sizeof(big) + 9); i++) {
        ssize_t r = recv(sv[1], got + n, sizeof(got) - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        assert_true(af__conn_flush(&c, 0));
    }
    assert_int_equal(c.tx.len, c.tx_off);
    assert_int_equal(n, 7 + sizeof(big) + 2); /* "40000\r\n", the bytes, CRLF */
    assert_memory_equal(got, "40000\r\n", 7);
    assert_memory_equal(got + 7 + sizeof(big), "\r\n", 2);
    af__buf_clear(&c.tx);
    close(l.epfd);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deltas_come_out_in_order_as_one_write),
        cmocka_unit_test(test_flush_with_nothing_pending_does_nothing),
        cmocka_unit_test(test_dropped_stream_loses_its_pending_deltas),
        cmocka_unit_test(test_overflow_stops_the_output),
        cmocka_unit_test(test_queue_wakes_once_per_wait),
        cmocka_unit_test(test_output_that_waits_is_sent_when_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
