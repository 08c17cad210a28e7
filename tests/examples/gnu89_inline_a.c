/* Two translation units that both include trace.h, built with -fgnu89-inline: under GNU89
 * semantics a plain `inline` definition is an external one in every unit, so this pair only
 * links when the header's inline functions are `static inline`. */
#include "agentaflow/trace.h"

af_span gnu89_inline_b(af_tracer *t);

int main(void)
{
    af_span_end(af_span_start(NULL, "a", NULL));
    af_span s = gnu89_inline_b(NULL);
    af_span_set_attrs(s, NULL, 0);
    af_span_add_event(s, "e", NULL, 0);
    af_span_end(s);
    return s.rec == NULL ? 0 : 1;
}
