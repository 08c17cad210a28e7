/*
 * Span limits: the spec defaults and the OTEL_*_LIMIT environment variables.
 *
 * Precedence for the span attribute limits: the span-specific variable
 * (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT) beats the generic
 * one (OTEL_ATTRIBUTE_COUNT_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT), which beats the value
 * already in the struct. Per-event and per-link attribute counts have only their own
 * variables: the spec's generic limit is about a model's top-level attributes. Invalid values
 * (not a decimal integer in [0, 4294967295]) are warned about by util/env.c and skipped.
 */
#include "agentaflow/trace.h"

#include "util/env.h"

#define SPEC_DEFAULT_COUNT 128

void af_span_limits_init(af_span_limits *l)
{
    l->attribute_count = SPEC_DEFAULT_COUNT;
    l->attribute_value_length = AF_LIMIT_UNLIMITED;
    l->event_count = SPEC_DEFAULT_COUNT;
    l->link_count = SPEC_DEFAULT_COUNT;
    l->attribute_per_event_count = SPEC_DEFAULT_COUNT;
    l->attribute_per_link_count = SPEC_DEFAULT_COUNT;
}

static void apply(const char *name, uint32_t *field)
{
    af__env_u32(name, 0, UINT32_MAX, field);
}

void af_span_limits_from_env(af_span_limits *l)
{
    apply("OTEL_ATTRIBUTE_COUNT_LIMIT", &l->attribute_count);
    apply("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", &l->attribute_count);
    apply("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", &l->attribute_value_length);
    apply("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", &l->attribute_value_length);
    apply("OTEL_SPAN_EVENT_COUNT_LIMIT", &l->event_count);
    apply("OTEL_SPAN_LINK_COUNT_LIMIT", &l->link_count);
    apply("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", &l->attribute_per_event_count);
    apply("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", &l->attribute_per_link_count);
}
