/*
 * The default id generator (never zero, no repeats, every byte random, per thread, reseeded
 * in a forked child) and the span context value helpers (validity, hex, names).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentaflow/trace.h"

enum { N_IDS = 20000 };

static int cmp_span(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

static int cmp_trace(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_span_ids_distinct_nonzero(void **state)
{
    (void)state;
    uint8_t(*ids)[8] = malloc(N_IDS * sizeof(*ids));
    assert_non_null(ids);
    for (int i = 0; i < N_IDS; i++) {
        af_random_span_id(ids[i]);
        assert_false(all_zero(ids[i], 8));
    }
    qsort(ids, N_IDS, sizeof(*ids), cmp_span);
    for (int i = 1; i < N_IDS; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 8) != 0);
    free(ids);
}

static void test_trace_ids_distinct_nonzero(void **state)
{
    (void)state;
    uint8_t(*ids)[16] = malloc(N_IDS * sizeof(*ids));
    assert_non_null(ids);
    for (int i = 0; i < N_IDS; i++) {
        af_random_trace_id(ids[i]);
        assert_false(all_zero(ids[i], 16));
    }
    qsort(ids, N_IDS, sizeof(*ids), cmp_trace);
    for (int i = 1; i < N_IDS; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 16) != 0);
    free(ids);
}

/* W3C Level 2 needs the right-most 7 bytes random; we make every byte random. A byte stuck
 * at a constant (or a generator filling only some bytes) would show here: with 4096 draws a
 * uniform byte takes about 256 distinct values, and each bit is set about half of the time. */
static void test_every_byte_varies(void **state)
{
    (void)state;
    enum { DRAWS = 4096 };
    static bool seen[16][256];
    static unsigned ones[16][8];
    memset(seen, 0, sizeof(seen));
    memset(ones, 0, sizeof(ones));
    for (int i = 0; i < DRAWS; i++) {
        uint8_t id[16];
        af_random_trace_id(id);
        for (int b = 0; b < 16; b++) {
            seen[b][id[b]] = true;
            for (int bit = 0; bit < 8; bit++)
                ones[b][bit] += (id[b] >> bit) & 1;
        }
    }
    for (int b = 0; b < 16; b++) {
        int distinct = 0;
        for (int v = 0; v < 256; v++)
            distinct += seen[b][v];
        assert_true(distinct >= 240);
        for (int bit = 0; bit < 8; bit++) {
            /* 2048 expected, standard deviation 32: +-320 is 10 deviations. */
            assert_true(ones[b][bit] > 1728 && ones[b][bit] < 2368);
        }
    }
}

typedef struct thread_ids {
    uint8_t ids[1000][8];
} thread_ids;

static void *thread_main(void *arg)
{
    thread_ids *t = arg;
    for (int i = 0; i < 1000; i++)
        af_random_span_id(t->ids[i]);
    return NULL;
}

static void test_threads_get_independent_streams(void **state)
{
    (void)state;
    thread_ids *t = calloc(4, sizeof(*t));
    assert_non_null(t);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &t[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    uint8_t(*all)[8] = (uint8_t(*)[8])t;
    qsort(all, 4000, 8, cmp_span);
    for (int i = 1; i < 4000; i++)
        assert_true(memcmp(all[i - 1], all[i], 8) != 0);
    free(t);
}

/* Without the fork reseed the child's first ids would equal the parent's next ids exactly,
 * because the child inherits the parent's thread-local generator state. */
static void test_fork_child_reseeds(void **state)
{
    (void)state;
    enum { K = 8 };
    uint8_t warm[16];
    af_random_trace_id(warm); /* make sure the parent's state is seeded before the fork */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t out[K][24];
        for (int i = 0; i < K; i++) {
            af_random_trace_id(out[i]);
            af_random_span_id(out[i] + 16);
        }
        ssize_t w = write(fds[1], out, sizeof(out));
        _exit(w == (ssize_t)sizeof(out) ? 0 : 1);
    }
    close(fds[1]);
    uint8_t mine[K][24];
    for (int i = 0; i < K; i++) {
        af_random_trace_id(mine[i]);
        af_random_span_id(mine[i] + 16);
    }
    uint8_t child[K][24];
    size_t got = 0;
    while (got < sizeof(child)) {
        ssize_t n = read(fds[0], (uint8_t *)child + got, sizeof(child) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof(child));
    for (int i = 0; i < K; i++) {
        assert_false(all_zero(child[i], 16));
        assert_false(all_zero(child[i] + 16, 8));
        for (int j = 0; j < K; j++) {
            assert_true(memcmp(child[i], mine[j], 16) != 0);
            assert_true(memcmp(child[i] + 16, mine[j] + 16, 8) != 0);
        }
    }
}

static void test_span_context_validity(void **state)
{
    (void)state;
    af_span_context sc;
    memset(&sc, 0xAB, sizeof(sc));
    af_span_context_init(&sc);
    assert_true(all_zero((const uint8_t *)&sc, sizeof(sc)));
    assert_false(af_span_context_is_valid(&sc));
    assert_false(af_span_context_is_valid(NULL));
    sc.trace_id[15] = 1;
    assert_false(af_span_context_is_valid(&sc)); /* span id still zero */
    sc.span_id[0] = 1;
    assert_true(af_span_context_is_valid(&sc));
    sc.trace_id[15] = 0;
    assert_false(af_span_context_is_valid(&sc)); /* trace id zero */

    assert_false(af_span_context_is_sampled(&sc));
    sc.trace_flags = AF_TRACE_FLAG_RANDOM;
    assert_false(af_span_context_is_sampled(&sc));
    sc.trace_flags = AF_TRACE_FLAG_SAMPLED | AF_TRACE_FLAG_RANDOM;
    assert_true(af_span_context_is_sampled(&sc));
    assert_false(af_span_context_is_sampled(NULL));
}

static void test_hex(void **state)
{
    (void)state;
    const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                             0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    char th[33], sh[17];
    af_trace_id_to_hex(tid, th);
    af_span_id_to_hex(sid, sh);
    assert_string_equal(th, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sh, "00f067aa0ba902b7");

    uint8_t t2[16], s2[8];
    assert_int_equal(af_trace_id_from_hex(th, 32, t2), 0);
    assert_memory_equal(t2, tid, 16);
    assert_int_equal(af_span_id_from_hex("00F067AA0BA902B7", 16, s2), 0);
    assert_memory_equal(s2, sid, 8);
    /* Only the first `len` bytes are read. */
    assert_int_equal(af_span_id_from_hex("00f067aa0ba902b7-01", 16, s2), 0);
    assert_memory_equal(s2, sid, 8);

    /* Rejections leave the output untouched. */
    memset(s2, 0x55, sizeof(s2));
    assert_int_equal(af_span_id_from_hex("00f067aa0ba902b", 15, s2), -EINVAL);
    assert_int_equal(af_span_id_from_hex("00f067aa0ba902b7a", 17, s2), -EINVAL);
    assert_int_equal(af_span_id_from_hex("00f067aa0ba902bg", 16, s2), -EINVAL);
    assert_int_equal(af_span_id_from_hex("00f067aa 0ba902b", 16, s2), -EINVAL);
    assert_int_equal(af_span_id_from_hex(NULL, 16, s2), -EINVAL);
    for (size_t i = 0; i < sizeof(s2); i++)
        assert_int_equal(s2[i], 0x55);
    assert_int_equal(af_trace_id_from_hex("4bf92f3577b34da6a3ce929d0e0e473z", 32, t2), -EINVAL);
    assert_int_equal(af_trace_id_from_hex("4bf92f3577b34da6", 16, t2), -EINVAL);

    /* Round trip of random ids. */
    for (int i = 0; i < 1000; i++) {
        uint8_t a[16], b[16];
        af_random_trace_id(a);
        af_trace_id_to_hex(a, th);
        assert_int_equal(strlen(th), 32);
        assert_int_equal(af_trace_id_from_hex(th, 32, b), 0);
        assert_memory_equal(a, b, 16);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(af_span_kind_name(AF_SPAN_KIND_INTERNAL), "internal");
    assert_string_equal(af_span_kind_name(AF_SPAN_KIND_SERVER), "server");
    assert_string_equal(af_span_kind_name(AF_SPAN_KIND_CLIENT), "client");
    assert_string_equal(af_span_kind_name(AF_SPAN_KIND_PRODUCER), "producer");
    assert_string_equal(af_span_kind_name(AF_SPAN_KIND_CONSUMER), "consumer");
    assert_string_equal(af_span_kind_name((af_span_kind)0), "unspecified");
    assert_string_equal(af_span_kind_name((af_span_kind)42), "unknown");
    assert_string_equal(af_status_code_name(AF_STATUS_UNSET), "UNSET");
    assert_string_equal(af_status_code_name(AF_STATUS_OK), "OK");
    assert_string_equal(af_status_code_name(AF_STATUS_ERROR), "ERROR");
    assert_string_equal(af_status_code_name((af_status_code)9), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_ids_distinct_nonzero),
        cmocka_unit_test(test_trace_ids_distinct_nonzero),
        cmocka_unit_test(test_every_byte_varies),
        cmocka_unit_test(test_threads_get_independent_streams),
        cmocka_unit_test(test_fork_child_reseeds),
        cmocka_unit_test(test_span_context_validity),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
