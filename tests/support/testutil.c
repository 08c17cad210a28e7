/* Shared helpers for the cmocka unit tests. */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "util/buf.h"

void af_test_env_init(af_test_env *env)
{
    memset(env, 0, sizeof(*env));
    af_resource *res = NULL;
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "test")), &res), 0);
    af_tracer_provider_opts o;
    af_tracer_provider_opts_init(&o);
    o.resource = res;
    o.sampler = af_sampler_always_on();
    assert_int_equal(af_tracer_provider_new(&o, &env->provider), 0);
    af_exporter *exp = NULL;
    assert_int_equal(af_memory_exporter_new(0, &exp, &env->mem), 0);
    af_span_processor *proc = NULL;
    assert_int_equal(af_simple_processor_new(exp, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(env->provider, proc), 0);
    env->tracer = af_tracer_provider_get_tracer(env->provider, "test", "1.0", NULL);
    assert_non_null(env->tracer);
}

void af_test_env_free(af_test_env *env)
{
    af_tracer_provider_free(env->provider);
    memset(env, 0, sizeof(*env));
}

size_t af_test_spans(af_test_env *env, af_span_copy **out, size_t cap)
{
    return af_memory_exporter_snapshot(env->mem, out, cap);
}

void af_test_spans_free(af_span_copy **spans, size_t n)
{
    for (size_t i = 0; i < n; i++)
        af_span_copy_release(spans[i]);
}

const af_span_data *af_test_find_span(af_span_copy **spans, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const af_span_data *d = af_span_copy_data(spans[i]);
        if (strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

const af_attr *af_test_find_attr(const af_attr *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(attrs[i].key, key) == 0)
            return &attrs[i];
    return NULL;
}

static af_buf log_buf;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void capture(af_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    pthread_mutex_lock(&log_mu);
    af__buf_puts(&log_buf, msg);
    af__buf_putc(&log_buf, '\n');
    af__buf_terminate(&log_buf);
    pthread_mutex_unlock(&log_mu);
}

void af_test_log_capture_begin(void)
{
    pthread_mutex_lock(&log_mu);
    af__buf_clear(&log_buf);
    af__buf_terminate(&log_buf);
    pthread_mutex_unlock(&log_mu);
    af_log_set_handler(capture, NULL);
}

const char *af_test_log_capture_text(void)
{
    return log_buf.data ? (const char *)log_buf.data : "";
}

void af_test_log_capture_end(void)
{
    af_log_set_handler(NULL, NULL);
}

af_headers *af_test_headers(const char *const *kv, size_t n)
{
    af_headers *h = NULL;
    assert_int_equal(af_headers_new(&h), 0);
    for (size_t i = 0; i + 1 < n; i += 2)
        assert_int_equal(af_headers_add(h, kv[i], kv[i + 1]), 0);
    return h;
}

char af_test_child_verdict(pid_t pid, int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char v = 't'; /* timed out */
    if (poll(&pfd, 1, timeout_ms) == 1 && read(fd, &v, 1) != 1)
        v = 'e';
    close(fd);
    if (v == 't')
        kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return v;
}

void af_test_child_report(int fd, bool ok)
{
    char v = ok ? 'y' : 'n';
    _exit(write(fd, &v, 1) == 1 ? 0 : 2);
}
