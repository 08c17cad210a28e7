/* A program built against the installed library, as a user would. */
#include <agentaflow/export.h>
#include <stdio.h>

int main(void)
{
    af_tracer_provider *p = NULL;
    af_exporter *e = NULL;
    af_memory_exporter *m = NULL;
    af_span_processor *proc = NULL;
    if (af_tracer_provider_new(NULL, &p) != 0 || af_memory_exporter_new(0, &e, &m) != 0 ||
        af_simple_processor_new(e, &proc) != 0 || af_tracer_provider_add_processor(p, proc) != 0)
        return 1;
    af_tracer *t = af_tracer_provider_get_tracer(p, "consumer", "1", NULL);
    af_span_end(af_span_start(t, "installed", NULL));
    int ok = af_memory_exporter_total(m) == 1;
    af_tracer_provider_free(p);
    printf("%s\n", ok ? "ok" : "no span");
    return ok ? 0 : 1;
}
