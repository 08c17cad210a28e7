/*
 * trace/tracestate_int.h - tracestate entry points shared inside the library.
 */
#ifndef AF_TRACE_TRACESTATE_INT_H
#define AF_TRACE_TRACESTATE_INT_H

#include "agentaflow/propagation.h"

/*
 * af_tracestate_set over several header fields at once, as if they were joined with ','
 * (RFC 9110 field combination) but without building the joined string. `fields` is borrowed
 * for the call. Returns 0, or AF_EPARSE leaving sc untouched.
 */
int af__tracestate_set_fields(af_span_context *sc, const af_str *fields, size_t n_fields);

#endif
