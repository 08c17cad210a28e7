/*
 * The default id generator: one xoshiro256** state per thread, seeded from getrandom().
 *
 * Why per thread: ids are made on every span start, so the generator must not share a
 * cache line or a lock between threads. Why the fork generation: a forked child inherits
 * its parent's thread-local state byte for byte and would otherwise repeat the parent's ids.
 * A pthread_atfork child handler bumps `fork_gen`; each thread compares its state's
 * generation with it before drawing (one relaxed load and a compare), and reseeds when they
 * differ. A never-seeded state has generation 0, which never matches, so the same compare
 * also covers first use.
 *
 * Every bit of both ids is random, so trace ids meet W3C Trace Context Level 2's randomness
 * requirement (the right-most 7 bytes random) and callers may set AF_TRACE_FLAG_RANDOM.
 */
#define AF_LOG_COMPONENT "tracing"

#include "agentaflow/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "agentaflow/log.h"
#include "trace/span_int.h"

typedef struct rng_state {
    uint64_t s[4];
    uint64_t gen; /* fork generation this state was seeded in; 0 = never seeded */
} rng_state;

/* The default TLS model, no initial-exec: initial-exec marks libagentaflow.so STATIC_TLS,
 * which dlopen() may refuse. The library is compiled with TLS descriptors where the compiler
 * has them (CMakeLists.txt), so in the shared object an access is a call returning a
 * constant offset rather than __tls_get_addr (about 9 ns an id instead of 3, measured). */
static _Thread_local rng_state tl_rng;
static _Atomic uint64_t fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Distinguishes threads seeded in the same nanosecond when getrandom() is unavailable. */
static _Atomic uint64_t fallback_counter;
static atomic_bool fallback_warned;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    if (pthread_atfork(NULL, NULL, on_fork_child) != 0)
        af_log(AF_LOG_WARN, "ids: pthread_atfork failed; a forked child may repeat its "
                            "parent's span ids");
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Returns 0 or the errno of the failed getrandom() call. */
static int fill_from_getrandom(uint64_t s[4])
{
    uint8_t *p = (uint8_t *)s;
    size_t got = 0;
    while (got < 4 * sizeof(uint64_t)) {
        ssize_t n = getrandom(p + got, 4 * sizeof(uint64_t) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Last resort (getrandom missing, e.g. a pre-3.17 kernel or a seccomp filter): mix clocks,
 * pid, the state's address and a process-wide counter. Unpredictable enough for unique ids,
 * which is all a tracer needs; warned about once because it is not cryptographic. */
static void fill_from_fallback(uint64_t s[4], const void *addr, int err)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t x = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
    x ^= ((uint64_t)mono.tv_nsec << 32) ^ (uint64_t)mono.tv_sec;
    x ^= (uint64_t)getpid() << 16;
    x ^= (uint64_t)(uintptr_t)addr;
    x ^= atomic_fetch_add_explicit(&fallback_counter, 1, memory_order_relaxed) << 48;
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&x);
    if (!atomic_exchange(&fallback_warned, true))
        af_log(AF_LOG_WARN, "ids: getrandom() failed (%s); seeding span ids from clocks",
               strerror(err));
}

static void reseed(rng_state *r)
{
    pthread_once(&atfork_once, register_atfork);
    /* Read the generation before seeding: a fork racing with us then forces another reseed
     * in the child instead of leaving it with the parent's fresh state. */
    uint64_t gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    int err = fill_from_getrandom(r->s);
    if (err)
        fill_from_fallback(r->s, r, err);
    /* xoshiro's one forbidden state; 2^-256 likely, but it would emit zeros forever. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 0x9E3779B97F4A7C15ull;
    r->gen = gen;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman and Vigna, public domain reference algorithm). */
static inline uint64_t next_u64(rng_state *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline rng_state *thread_rng(void)
{
    rng_state *r = &tl_rng;
    /* GCC recomputes a TLS address at each use rather than keep it in a register: with TLS
     * descriptors that is a call per use, three per id (measured: 46 instructions a span id
     * instead of 33). The empty asm hides where r came from, so it is computed once. */
    __asm__("" : "+r"(r));
    if (__builtin_expect(r->gen != atomic_load_explicit(&fork_gen, memory_order_relaxed), 0))
        reseed(r);
    return r;
}

/*
 * Stores a 16-byte id as one 16-byte store. Written as two 8-byte halves through memory, the
 * id was read back by a 16-byte load (GCC's memcpy of the pair, and the span's copy of its
 * trace id), which cannot be forwarded from two smaller stores and waits for them to reach
 * the cache: perf on a kvm-clock VM put 4 % of a sampled span's cycles on that load.
 */
static inline void store_id16(uint8_t out[16], uint64_t lo, uint64_t hi)
{
#ifdef __SSE2__
    _mm_storeu_si128((__m128i *)(void *)out, _mm_set_epi64x((long long)hi, (long long)lo));
#else
    memcpy(out, &lo, 8);
    memcpy(out + 8, &hi, 8);
#endif
}

/* A trace id: 16 random bytes, not all zero. */
static inline void next_trace_id(rng_state *r, uint8_t out[16])
{
    uint64_t lo, hi;
    do {
        lo = next_u64(r);
        hi = next_u64(r);
    } while ((lo | hi) == 0);
    store_id16(out, lo, hi);
}

void af_random_trace_id(uint8_t out[16])
{
    next_trace_id(thread_rng(), out);
}

void af_random_span_id(uint8_t out[8])
{
    rng_state *r = thread_rng();
    uint64_t w;
    do {
        w = next_u64(r);
    } while (w == 0);
    memcpy(out, &w, sizeof(w));
}

void af__random_ids(uint8_t trace_id[16], uint8_t span_id[8])
{
    rng_state *r = thread_rng();
    next_trace_id(r, trace_id);
    uint64_t w;
    do {
        w = next_u64(r);
    } while (w == 0);
    memcpy(span_id, &w, 8);
}
