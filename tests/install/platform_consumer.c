/* A program built against the installed platform library: a cost tracker (platform) traced
 * through a provider and memory exporter (SDK), so calls cross from one library into the other. */
#include <agentaflow/cost.h>
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
    af_cost_tracker_opts o;
    af_cost_tracker_opts_init(&o);
    o.tracer = af_tracer_provider_get_tracer(p, "consumer", "1", NULL);
    af_cost_tracker *t = NULL;
    if (af_cost_tracker_new(&o, &t) != 0)
        return 1;
    af_cost_entry entry = {.operation = "inference", .cost = 0.5};
    int rc = af_cost_record(t, NULL, &entry);
    int ok = rc == 0 && af_memory_exporter_total(m) == 1;
    af_cost_tracker_free(t);
    af_tracer_provider_free(p);
    printf("%s\n", ok ? "ok" : "no cost span");
    return ok ? 0 : 1;
}
