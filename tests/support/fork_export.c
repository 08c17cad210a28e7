/*
 * The fork-during-export check (fork_export.h).
 */
#include "fork_export.h"

#include "testutil.h"

#include <unistd.h>

/* In the child: its spans, its shutdown, and whether both went as they should. */
static bool child_ok(af_tracer_provider *p, af_tracer *t, size_t child_spans)
{
    for (size_t i = 0; i < child_spans; i++)
        af_span_end(af_span_start(t, "child", NULL));
    int rc = af_tracer_provider_shutdown(p, 2000);
    af_span_processor *proc = NULL;
    af_tracer_provider_processors(p, &proc, 1);
    af_processor_stats st;
    af_span_processor_stats_get(proc, &st);
    return rc == 0 && st.exported == child_spans && st.failed == 0;
}

void af_test_fork_during_export(af_test_http_receiver *rx, af_test_make_provider make, void *ctx,
                                size_t child_spans)
{
#if defined(__SANITIZE_THREAD__)
    print_message("skipped under ThreadSanitizer (no threads after a multi-threaded fork)\n");
    skip();
#endif
    af_test_http_reply slow = {.delay_ms = 1000};
    af_test_http_receiver_script(rx, &slow, 1);
    af_tracer *t = NULL;
    af_tracer_provider *p = make(ctx, &t);
    af_span_end(af_span_start(t, "parent", NULL)); /* a full batch: sent at once */
    assert_int_equal(af_test_http_receiver_wait(rx, 1, 10000), 1);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        af_test_child_report(fds[1], child_ok(p, t, child_spans));
    }
    close(fds[1]);
    char v = af_test_child_verdict(pid, fds[0], 30000);
    assert_int_equal(v, 'y');
    /* The parent's request was untouched by the child, which sent its own. */
    assert_int_equal(af_tracer_provider_shutdown(p, 10000), 0);
    assert_int_equal(af_test_http_receiver_requests(rx), 1 + child_spans);
    af_tracer_provider_free(p);
}
