/* The second unit of the -fgnu89-inline link test (see gnu89_inline_a.c). */
#include "agentaflow/trace.h"

af_span gnu89_inline_b(af_tracer *t);

af_span gnu89_inline_b(af_tracer *t)
{
    af_span s = af_span_start(t, "b", NULL);
    af_span_set_attrs(s, NULL, 0);
    af_span_add_event(s, "e", NULL, 0);
    af_span_end(s);
    return s;
}
