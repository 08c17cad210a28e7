/* Unit tests for the batch processor's queue (trace/lanes.c): order, the shared bound,
 * concurrent producers against a live consumer, thread exit, destroy and fork. The queue only
 * stores record pointers, so the tests push numbered fake ones and never dereference them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "trace/lanes.h"

static af_span_rec *fake(uintptr_t n)
{
    return (af_span_rec *)(n << 4);
}

static uintptr_t number(const af_span_rec *r)
{
    return (uintptr_t)r >> 4;
}

static bool push(af__lanes *q, uintptr_t n)
{
    size_t depth;
    return af__lanes_push(q, fake(n), &depth);
}

static size_t released;
static void count_release(af_span_rec *r)
{
    (void)r;
    released++;
}

/* One thread, across many segments: first in, first out, and the counts agree. */
static void test_order_across_segments(void **state)
{
    (void)state;
    af__lanes q;
    assert_int_equal(af__lanes_init(&q, 5000), 0);
    for (uintptr_t i = 1; i <= 3000; i++)
        assert_true(push(&q, i));
    assert_int_equal(af__lanes_depth(&q), 3000);
    assert_int_equal(af__lanes_pushed(&q), 3000);
    af_span_rec *out[700];
    uintptr_t want = 1;
    for (size_t n; (n = af__lanes_pop(&q, out, 700)) > 0;)
        for (size_t i = 0; i < n; i++)
            assert_int_equal(number(out[i]), want++);
    assert_int_equal(want, 3001);
    assert_int_equal(af__lanes_depth(&q), 0);
    /* Segments come back as spares and are used again. */
    for (uintptr_t i = 1; i <= 3000; i++)
        assert_true(push(&q, i));
    released = 0;
    af__lanes_destroy(&q, count_release);
    assert_int_equal(released, 3000);
}

/* The capacity bounds the queue exactly, and popped places can be used again. */
static void test_bound_is_exact(void **state)
{
    (void)state;
    af__lanes q;
    assert_int_equal(af__lanes_init(&q, 100), 0);
    size_t accepted = 0;
    for (uintptr_t i = 1; i <= 150; i++)
        accepted += push(&q, i);
    assert_int_equal(accepted, 100);
    size_t depth = 0;
    assert_false(af__lanes_push(&q, fake(999), &depth));
    assert_int_equal(depth, 100); /* a refused push reports a full queue */
    af_span_rec *out[10];
    assert_int_equal(af__lanes_pop(&q, out, 10), 10);
    accepted = 0;
    for (uintptr_t i = 1; i <= 20; i++)
        accepted += push(&q, i);
    assert_int_equal(accepted, 10);
    af__lanes_destroy(&q, count_release);
}

typedef struct producer_arg {
    af__lanes *q;
    uintptr_t first, count;
    size_t refused;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (uintptr_t i = 0; i < a->count; i++)
        while (!push(a->q, a->first + i))
            a->refused++; /* full: the consumer is behind; try again */
    return NULL;
}

/* Pushes first..first+count-1 from a thread that then exits; returns the refused pushes. */
static size_t push_from_exited_thread(af__lanes *q, uintptr_t first, uintptr_t count)
{
    producer_arg a = {q, first, count, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer, &a), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    return a.refused;
}

/* Four producers and a consumer at once: every record comes out exactly once, each
 * producer's in its order, and the queue never holds more than its capacity. */
static void test_concurrent_producers(void **state)
{
    (void)state;
    enum { THREADS = 4, EACH = 50000, CAP = 512 };
    af__lanes q;
    assert_int_equal(af__lanes_init(&q, CAP), 0);
    producer_arg args[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (producer_arg){&q, (uintptr_t)t * EACH + 1, EACH, 0};
        assert_int_equal(pthread_create(&th[t], NULL, producer, &args[t]), 0);
    }
    unsigned char *seen = calloc(THREADS * EACH + 1, 1);
    uintptr_t last[THREADS] = {0};
    size_t total = 0, max_depth = 0;
    af_span_rec *out[64];
    while (total < THREADS * EACH) {
        size_t d = af__lanes_depth(&q);
        if (d > max_depth)
            max_depth = d;
        size_t n = af__lanes_pop(&q, out, 64);
        for (size_t i = 0; i < n; i++) {
            uintptr_t v = number(out[i]);
            assert_true(v >= 1 && v <= THREADS * EACH);
            assert_int_equal(seen[v], 0);
            seen[v] = 1;
            int t = (int)((v - 1) / EACH);
            assert_true(v > last[t]);
            last[t] = v;
        }
        total += n;
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_true(max_depth <= CAP);
    assert_int_equal(af__lanes_pushed(&q), THREADS * EACH);
    free(seen);
    af__lanes_destroy(&q, count_release);
}

/* A thread that exits leaves its records to the consumer, and its lane's unused places go
 * back to the pool once the consumer has emptied and freed the lane. */
static void test_thread_exit(void **state)
{
    (void)state;
    af__lanes q;
    assert_int_equal(af__lanes_init(&q, 1000), 0);
    assert_int_equal(push_from_exited_thread(&q, 1, 300), 0);
    af_span_rec *out[512];
    assert_int_equal(af__lanes_pop(&q, out, 512), 300);
    assert_int_equal(af__lanes_pop(&q, out, 512), 0); /* frees the exited thread's lane */
    assert_int_equal(af__lanes_pushed(&q), 300);
    assert_int_equal(q.n_lanes, 0);
    size_t accepted = 0;
    for (uintptr_t i = 1; i <= 1200; i++)
        accepted += push(&q, i);
    assert_int_equal(accepted, 1000); /* the whole capacity again */
    af__lanes_destroy(&q, count_release);
}

/* A queue destroyed while its threads live: they let go of their lanes when they next look
 * for one, and a new queue works. */
static void test_destroy_then_new_queue(void **state)
{
    (void)state;
    af__lanes q1, q2;
    assert_int_equal(af__lanes_init(&q1, 64), 0);
    assert_true(push(&q1, 1));
    released = 0;
    af__lanes_destroy(&q1, count_release);
    assert_int_equal(released, 1);
    assert_int_equal(af__lanes_init(&q2, 64), 0);
    assert_true(push(&q2, 2));
    af_span_rec *out[4];
    assert_int_equal(af__lanes_pop(&q2, out, 4), 1);
    assert_int_equal(number(out[0]), 2);
    af__lanes_destroy(&q2, count_release);
}

/* Two queues from one thread, alternately, as a provider with two batch processors does. */
static void test_two_queues_one_thread(void **state)
{
    (void)state;
    af__lanes a, b;
    assert_int_equal(af__lanes_init(&a, 64), 0);
    assert_int_equal(af__lanes_init(&b, 64), 0);
    for (uintptr_t i = 1; i <= 40; i++) {
        assert_true(push(&a, i));
        assert_true(push(&b, 100 + i));
    }
    af_span_rec *out[64];
    assert_int_equal(af__lanes_pop(&a, out, 64), 40);
    assert_int_equal(number(out[39]), 40);
    assert_int_equal(af__lanes_pop(&b, out, 64), 40);
    assert_int_equal(number(out[0]), 101);
    af__lanes_destroy(&a, count_release);
    af__lanes_destroy(&b, count_release);
}

/* In a forked child the parent's records are released, the pool is full again and the
 * forking thread gets a new lane. */
static void test_fork_child(void **state)
{
    (void)state;
    af__lanes q;
    assert_int_equal(af__lanes_init(&q, 200), 0);
    assert_int_equal(push_from_exited_thread(&q, 1, 50), 0);
    for (uintptr_t i = 1; i <= 70; i++)
        assert_true(push(&q, 1000 + i));
    af__lanes_atfork_prepare(&q);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        released = 0;
        af__lanes_atfork_child(&q, count_release);
        af__lanes_forget_thread_in_child();
        int bad = released != 120;
        size_t accepted = 0;
        for (uintptr_t i = 1; i <= 250; i++)
            accepted += push(&q, 5000 + i);
        bad |= (accepted != 200) << 1;
        af_span_rec *out[256];
        size_t n = af__lanes_pop(&q, out, 256);
        bad |= (n != 200 || number(out[0]) != 5001) << 2;
        /* No destroy: TSan still counts the re-created mutex as the parent's, locked. */
        _exit(bad);
    }
    af__lanes_atfork_parent(&q);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(af__lanes_depth(&q), 120); /* the parent's queue is untouched */
    released = 0;
    af__lanes_destroy(&q, count_release);
    assert_int_equal(released, 120);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_segments),
        cmocka_unit_test(test_bound_is_exact),
        cmocka_unit_test(test_concurrent_producers),
        cmocka_unit_test(test_thread_exit),
        cmocka_unit_test(test_destroy_then_new_queue),
        cmocka_unit_test(test_two_queues_one_thread),
        cmocka_unit_test(test_fork_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
