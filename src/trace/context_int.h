/*
 * trace/context_int.h - thread-local current context, shared with span.c (private).
 */
#ifndef AF_TRACE_CONTEXT_INT_H
#define AF_TRACE_CONTEXT_INT_H

#include "agentaflow/trace.h"

/* Fills the header fields of *sc (and trace_state, empty unless the span still holds one)
 * from the thread's current span; false when there is none. */
bool af__context_current_parent(af_span_context *sc);
/* The current span's ids for a JSON log line (util/log.c's context hook); false when none. */
bool af__context_log_ids(uint8_t trace_id[16], uint8_t span_id[8]);
/* Copies a span's context; false when the handle is stale or empty. */
bool af__span_context_of(af_span s, af_span_context *out, bool with_state);

#endif
