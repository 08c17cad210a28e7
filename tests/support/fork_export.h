/*
 * fork_export.h - the fork-during-export check every HTTP exporter's tests share
 * (test_otlp_http.c, test_jaeger_export.c), driven by the loopback receiver.
 */
#ifndef AF_TEST_FORK_EXPORT_H
#define AF_TEST_FORK_EXPORT_H

#include <stddef.h>

#include "agentaflow/trace_sdk.h"
#include "http_receiver.h"

/* Builds the provider under test: one batch processor that sends each span at once (batch
 * size 1) to rx's URL through the exporter; *t gets a tracer of it. */
typedef af_tracer_provider *(*af_test_make_provider)(void *ctx, af_tracer **t);

/*
 * A child forked while the parent's export waits for a slow collector (rx holds the first
 * request for a second) builds its own connection: its child_spans spans are all exported
 * within its 2 s shutdown, which does not wait for the parent's export, and the parent's
 * request is untouched (rx sees 1 + child_spans requests). A hung child fails the test after
 * 30 s instead of hanging it. Frees the provider. cmocka asserts; skipped under TSan, which
 * cannot start threads in the child of a multi-threaded fork.
 */
void af_test_fork_during_export(af_test_http_receiver *rx, af_test_make_provider make, void *ctx,
                                size_t child_spans);

#endif
