/*
 * chat_collect.h - what a test's chat call produced: the deltas, the final result, and a way
 * to wait for it (tests of af_serving_chat_*).
 *
 * af_test_chat_cbs appends each delta to `text` (kept NUL-terminated) and copies the result at
 * on_done (its content, cut to `content`'s size, into `content`). Set `cancel_on_first` to a
 * call to cancel it from inside the next delta; `user` is the test's own. Every field is
 * guarded by `mu` while a call may run; the accessors take it. Thread-safe as described;
 * af_test_chat_clear releases what _init made.
 */
#ifndef AF_TEST_CHAT_COLLECT_H
#define AF_TEST_CHAT_COLLECT_H

#include <pthread.h>

#include "agentaflow/serving.h"
#include "util/buf.h"

typedef struct af_test_chat {
    pthread_mutex_t mu;
    af_buf text;
    int deltas;
    int done_calls;
    int rc;
    af_chat_result res; /* res.content is NULL: the text is in `content` */
    char content[512];
    af_chat_call *cancel_on_first;
    void *user;
} af_test_chat;

void af_test_chat_init(af_test_chat *c);
void af_test_chat_clear(af_test_chat *c);

void af_test_chat_on_delta(void *ctx, const char *text, size_t len);
void af_test_chat_on_done(void *ctx, int rc, const af_chat_result *res);
extern const af_chat_callbacks af_test_chat_cbs;

int af_test_chat_done_count(af_test_chat *c);
int af_test_chat_delta_count(af_test_chat *c);
/* Polls until the call is done (10 s at most, never a fixed wait); fails the test unless
 * on_done came exactly once. */
void af_test_chat_wait(af_test_chat *c);

#endif
