/* Fork safety of the locks outside the batch processor (issue 12, item 4): the simple
 * processor and its exporter, the stdout exporter, the tracer provider and the tracing
 * facade. Each test forks while another thread holds (or keeps taking) the lock, and the
 * child must create spans, export them and shut down within a bound; it reports through a
 * pipe and the parent kills it if it misses the bound. alarm() bounds the fork itself, which
 * must never wait for an export's I/O. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"

#include "agentaflow/config.h"
#include "agentaflow/tracing.h"

#define CHILD_BOUND_MS 30000
#define FORK_BOUND_S 60 /* SIGALRM kills the test if fork() itself blocks */

/* An exporter that counts spans and, while `hang` is set, blocks inside export (a collector
 * that does not answer). Its fork hook is what a well-behaved custom exporter does: its lock
 * around the fork, fresh primitives in the child, and the parent's hang forgotten. */
typedef struct gate_exporter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t entered;
    size_t spans;
    bool hang;
} gate_exporter;

static int gate_export(void *self, const af_span_data *const *spans, size_t n, uint64_t dl)
{
    (void)spans;
    (void)dl;
    gate_exporter *g = self;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (g->hang)
        pthread_cond_wait(&g->cv, &g->mu);
    g->spans += n;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_atfork(void *self, af_fork_phase phase)
{
    gate_exporter *g = self;
    if (phase == AF_FORK_PREPARE) {
        pthread_mutex_lock(&g->mu);
    } else if (phase == AF_FORK_PARENT) {
        pthread_mutex_unlock(&g->mu);
    } else {
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cv, NULL);
        g->hang = false;
        g->entered = 0;
        g->spans = 0;
    }
}

static const af_exporter_ops gate_ops = {
    .type = "gate",
    .export_spans = gate_export,
    .atfork = gate_atfork,
};

static size_t gate_get(gate_exporter *g, const size_t *field)
{
    pthread_mutex_lock(&g->mu);
    size_t v = *field;
    pthread_mutex_unlock(&g->mu);
    return v;
}

static void gate_release(gate_exporter *g)
{
    pthread_mutex_lock(&g->mu);
    g->hang = false;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* A provider (AlwaysOn) whose spans go to `e` through a simple processor. */
static af_tracer_provider *simple_provider(af_exporter *e, af_span_processor **proc_out)
{
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_always_on();
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    af_span_processor *proc = NULL;
    assert_int_equal(af_simple_processor_new(e, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    if (proc_out)
        *proc_out = proc;
    return p;
}

static void emit(af_tracer *t, const char *name, int n)
{
    for (int i = 0; i < n; i++)
        af_span_end(af_span_start(t, name, NULL));
}

typedef struct ender {
    af_tracer *t;
    const char *name;
    _Atomic long tid;
    atomic_bool done;
} ender;

static void *end_one(void *arg)
{
    ender *en = arg;
    atomic_store(&en->tid, (long)syscall(SYS_gettid));
    emit(en->t, en->name, 1);
    atomic_store(&en->done, true);
    return NULL;
}

static pid_t bounded_fork(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    alarm(FORK_BOUND_S);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        alarm(0);
    return pid;
}

/* A thread is blocked inside a simple processor's export (holding its export lock) when the
 * test forks: the fork must not wait for it, and the child's spans must not wait either. */
static void test_fork_while_simple_processor_exports(void **state)
{
    (void)state;
    gate_exporter g = {.hang = true};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    af_exporter *e = NULL;
    assert_int_equal(af_exporter_new(&gate_ops, &g, &e), 0);
    af_span_processor *proc = NULL;
    af_tracer_provider *p = simple_provider(e, &proc);
    af_tracer *t = af_tracer_provider_get_tracer(p, "fork-simple", NULL, NULL);
    ender en = {.t = t, .name = "parent-span"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_one, &en), 0);
    uint64_t deadline = af_monotonic_ns() + 10000000000ull;
    while (gate_get(&g, &g.entered) == 0 && af_monotonic_ns() < deadline)
        sched_yield();
    assert_int_equal(gate_get(&g, &g.entered), 1);

    int fds[2];
    pid_t pid = bounded_fork(fds);
    if (pid == 0) {
        close(fds[0]);
        emit(t, "child-span", 2);
        int frc = af_tracer_provider_force_flush(p, 2000);
        bool exported = gate_get(&g, &g.spans) == 2;
        af_processor_stats st;
        af_span_processor_stats_get(proc, &st);
        int src = af_tracer_provider_shutdown(p, 2000);
        af_test_child_report(fds[1], exported && frc == 0 && src == 0 && st.exported == 2);
    }
    close(fds[1]);
    assert_int_equal(af_test_child_verdict(pid, fds[0], CHILD_BOUND_MS), 'y');
    gate_release(&g);
    pthread_join(th, NULL);
    assert_int_equal(gate_get(&g, &g.spans), 1);
    af_tracer_provider_free(p);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

/* The thread's scheduler state from /proc ('S' while it sleeps in a system call). */
static char thread_state(long tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

static void set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

/* Reads what is in the pipe now; returns whether `needle` was seen (searched per read). */
static bool drain_pipe(int fd, const char *needle)
{
    static char buf[65536 + 1];
    bool seen = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[n] = '\0';
        if (needle && strstr(buf, needle))
            seen = true;
    }
    return seen;
}

/* The child of a process whose stdout exporter is blocked writing to a full pipe empties the
 * pipe (it shares it) and must see its own span written there. */
static bool child_sees_its_span(af_tracer *t, int rd)
{
    drain_pipe(rd, NULL);
    emit(t, "child-span", 1);
    uint64_t deadline = af_monotonic_ns() + 10000000000ull;
    struct pollfd pfd = {.fd = rd, .events = POLLIN};
    while (af_monotonic_ns() < deadline) {
        if (poll(&pfd, 1, 100) == 1 && drain_pipe(rd, "\"child-span\""))
            return true;
    }
    return false;
}

/* A thread is blocked in the stdout exporter's write (a pipe nobody reads) behind a simple
 * processor when the test forks. */
static void test_fork_while_stdout_exporter_blocks(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    set_nonblock(pfd[1], true);
    static const char fill[4096];
    while (write(pfd[1], fill, sizeof fill) > 0)
        ; /* until EAGAIN: the pipe is full */
    set_nonblock(pfd[1], false);
    set_nonblock(pfd[0], true);
    FILE *stream = fdopen(pfd[1], "w");
    assert_non_null(stream);
    af_stdout_exporter_opts so;
    af_stdout_exporter_opts_init(&so);
    so.stream = stream;
    af_exporter *e = NULL;
    assert_int_equal(af_stdout_exporter_new(&so, &e), 0);
    af_span_processor *proc = NULL;
    af_tracer_provider *p = simple_provider(e, &proc);
    af_tracer *t = af_tracer_provider_get_tracer(p, "fork-stdout", NULL, NULL);
    ender en = {.t = t, .name = "parent-span"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_one, &en), 0);
    /* The thread's only sleep on its way is the write to the full pipe (nothing else holds
     * the locks it takes). The processor's stats are not read here: they must not wait for
     * the write either, but a regression there would hang this loop instead of failing. */
    uint64_t deadline = af_monotonic_ns() + 10000000000ull;
    while (thread_state(atomic_load(&en.tid)) != 'S' && af_monotonic_ns() < deadline)
        sched_yield();
    assert_int_equal(thread_state(atomic_load(&en.tid)), 'S');

    int fds[2];
    pid_t pid = bounded_fork(fds);
    if (pid == 0) {
        close(fds[0]);
        bool seen = child_sees_its_span(t, pfd[0]);
        int src = af_tracer_provider_shutdown(p, 2000);
        af_test_child_report(fds[1], seen && src == 0);
    }
    close(fds[1]);
    assert_int_equal(af_test_child_verdict(pid, fds[0], CHILD_BOUND_MS), 'y');
    deadline = af_monotonic_ns() + 10000000000ull;
    while (!atomic_load(&en.done) && af_monotonic_ns() < deadline) {
        drain_pipe(pfd[0], NULL);
        sched_yield();
    }
    assert_true(atomic_load(&en.done));
    pthread_join(th, NULL);
    af_processor_stats st;
    af_span_processor_stats_get(proc, &st);
    assert_int_equal(st.exported, 1);
    assert_int_equal(af_tracer_provider_shutdown(p, 5000), 0);
    af_tracer_provider_free(p);
    fclose(stream);
    close(pfd[0]);
}

typedef struct looper {
    af_tracer_provider *p;
    af_tracing *tr;
    af_tracing_config *cfg;
    atomic_bool stop;
    atomic_bool failed; /* cmocka's asserts belong to the test's thread */
    _Atomic uint64_t rounds;
} looper;

/* Keeps the provider's mutex busy: tracer look-ups walk a list of 64 scopes under it. */
static void *get_tracers(void *arg)
{
    looper *lp = arg;
    char name[32];
    for (unsigned i = 0; !atomic_load(&lp->stop); i++) {
        snprintf(name, sizeof name, "scope-%u", i % 64);
        (void)af_tracer_provider_get_tracer(lp->p, name, "1", NULL);
        atomic_fetch_add(&lp->rounds, 1);
    }
    return NULL;
}

static void wait_rounds(looper *lp, uint64_t want)
{
    uint64_t deadline = af_monotonic_ns() + 10000000000ull;
    while (atomic_load(&lp->rounds) < want && af_monotonic_ns() < deadline)
        sched_yield();
    assert_true(atomic_load(&lp->rounds) >= want);
}

/* Forks repeatedly while another thread keeps taking the provider's mutex; the child takes it
 * for a tracer and a new processor, then exports through it. */
static void test_fork_while_provider_lock_busy(void **state)
{
    (void)state;
    af_exporter *e = NULL;
    assert_int_equal(af_memory_exporter_new(64, &e, NULL), 0);
    af_tracer_provider *p = simple_provider(e, NULL);
    looper lp = {.p = p};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, get_tracers, &lp), 0);
    for (int i = 0; i < 30; i++) {
        wait_rounds(&lp, (uint64_t)(i + 1) * 200);
        int fds[2];
        pid_t pid = bounded_fork(fds);
        if (pid == 0) {
            close(fds[0]);
            af_tracer *t = af_tracer_provider_get_tracer(p, "child", NULL, NULL);
            af_exporter *ce = NULL;
            af_memory_exporter *m = NULL;
            af_span_processor *proc = NULL;
            bool ok = af_memory_exporter_new(8, &ce, &m) == 0 &&
                      af_simple_processor_new(ce, &proc) == 0 &&
                      af_tracer_provider_add_processor(p, proc) == 0;
            emit(t, "child-span", 3);
            ok = ok && af_memory_exporter_count(m) == 3;
            af_test_child_report(fds[1], ok && af_tracer_provider_shutdown(p, 2000) == 0);
        }
        close(fds[1]);
        assert_int_equal(af_test_child_verdict(pid, fds[0], CHILD_BOUND_MS), 'y');
    }
    atomic_store(&lp.stop, true);
    pthread_join(th, NULL);
    af_tracer_provider_free(p);
}

/* Keeps the tracing facade's lock busy: sampling-ratio reloads. */
static void *reconfigure(void *arg)
{
    looper *lp = arg;
    char err[256];
    for (unsigned i = 0; !atomic_load(&lp->stop); i++) {
        lp->cfg->tracing.sampling_ratio = (i & 1) ? 0.5 : 1.0;
        if (af_tracing_reconfigure(lp->tr, lp->cfg, err, sizeof err) != 0)
            atomic_store(&lp->failed, true);
        atomic_fetch_add(&lp->rounds, 1);
    }
    return NULL;
}

/* Forks repeatedly while another thread reloads the tracing configuration; the child adds an
 * exporter (the facade's lock), reloads itself, and exports through the new pipeline. */
static void test_fork_while_tracing_reconfigures(void **state)
{
    (void)state;
#if defined(__SANITIZE_THREAD__)
    print_message("skipped under ThreadSanitizer (no threads after a multi-threaded fork)\n");
    skip();
#elif defined(__SANITIZE_ADDRESS__)
    /* Each reload allocates; the sanitizer's allocator (GCC 12) is not fork-safe. */
    print_message("skipped under AddressSanitizer (its allocator is not fork-safe)\n");
    skip();
#endif
    af_tracing_config cfg, child_cfg;
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    cfg.tracing.exporters.jaeger.enabled = false;
    cfg.tracing.exporters.otlp_http.enabled = false;
    cfg.tracing.exporters.stdout_.enabled = false;
    assert_int_equal(af_tracing_config_init(&child_cfg), 0);
    child_cfg.tracing.exporters.jaeger.enabled = false;
    child_cfg.tracing.exporters.otlp_http.enabled = false;
    child_cfg.tracing.exporters.stdout_.enabled = false;
    af_tracing *tr = NULL;
    char err[256];
    assert_int_equal(af_tracing_new(&cfg, &tr, err, sizeof err), 0);
    looper lp = {.tr = tr, .cfg = &cfg};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reconfigure, &lp), 0);
    for (int i = 0; i < 20; i++) {
        wait_rounds(&lp, (uint64_t)(i + 1) * 20);
        int fds[2];
        pid_t pid = bounded_fork(fds);
        if (pid == 0) {
            close(fds[0]);
            af_exporter *e = NULL;
            af_memory_exporter *m = NULL;
            bool ok = af_memory_exporter_new(8, &e, &m) == 0 &&
                      af_tracing_add_exporter(tr, e, NULL) == 0 &&
                      af_tracing_reconfigure(tr, &child_cfg, err, sizeof err) == 0;
            emit(af_tracing_tracer(tr), "child-span", 3);
            ok = ok && af_tracing_force_flush(tr, 2000) == 0 && af_memory_exporter_count(m) == 3;
            af_test_child_report(fds[1], ok && af_tracing_shutdown(tr, 2000) == 0);
        }
        close(fds[1]);
        assert_int_equal(af_test_child_verdict(pid, fds[0], CHILD_BOUND_MS), 'y');
    }
    atomic_store(&lp.stop, true);
    pthread_join(th, NULL);
    assert_false(atomic_load(&lp.failed));
    af_tracing_free(tr);
    af_tracing_config_clear(&cfg);
    af_tracing_config_clear(&child_cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_while_simple_processor_exports),
        cmocka_unit_test(test_fork_while_stdout_exporter_blocks),
        cmocka_unit_test(test_fork_while_provider_lock_busy),
        cmocka_unit_test(test_fork_while_tracing_reconfigures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
