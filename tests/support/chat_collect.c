/* What a test's chat call produced (see chat_collect.h). */
#include "chat_collect.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

void af_test_chat_init(af_test_chat *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    af__buf_init(&c->text);
}

void af_test_chat_clear(af_test_chat *c)
{
    af__buf_clear(&c->text);
    pthread_mutex_destroy(&c->mu);
}

void af_test_chat_on_delta(void *ctx, const char *text, size_t len)
{
    af_test_chat *c = ctx;
    pthread_mutex_lock(&c->mu);
    af__buf_append(&c->text, text, len);
    af__buf_terminate(&c->text);
    c->deltas++;
    af_chat_call *cancel = c->cancel_on_first; /* once set: cancel from this delta */
    c->cancel_on_first = NULL;
    pthread_mutex_unlock(&c->mu);
    if (cancel)
        af_serving_chat_cancel(cancel);
}

void af_test_chat_on_done(void *ctx, int rc, const af_chat_result *res)
{
    af_test_chat *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->res = *res;
    c->res.content = NULL;
    if (res->content)
        snprintf(c->content, sizeof(c->content), "%.*s", (int)res->content_len, res->content);
    c->done_calls++;
    pthread_mutex_unlock(&c->mu);
}

const af_chat_callbacks af_test_chat_cbs = {af_test_chat_on_delta, af_test_chat_on_done};

int af_test_chat_done_count(af_test_chat *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->done_calls;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int af_test_chat_delta_count(af_test_chat *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->deltas;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void af_test_chat_wait(af_test_chat *c)
{
    uint64_t end = af_monotonic_ns() + UINT64_C(10000000000);
    while (af_test_chat_done_count(c) == 0 && af_monotonic_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(af_test_chat_done_count(c), 1);
}
