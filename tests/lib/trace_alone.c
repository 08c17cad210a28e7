/*
 * The tracing core on its own: this program is linked with the objects of src/trace and
 * src/util and nothing but libc and pthread (tests/lib/tests.cmake), so the link fails if
 * either layer comes to need another library or a higher layer. It traces through the
 * public API with a batch processor and an exporter of its own.
 */
#include <agentaflow/trace_sdk.h>
#include <stdio.h>
#include <string.h>

static unsigned exported;
static char last_name[32];

static int export_spans(void *self, const af_span_data *const *spans, size_t n,
                        uint64_t deadline_ns)
{
    (void)self;
    (void)deadline_ns;
    exported += (unsigned)n;
    if (n)
        snprintf(last_name, sizeof last_name, "%s", spans[n - 1]->name);
    return 0;
}

static const af_exporter_ops ops = {.type = "counting", .export_spans = export_spans};

int main(void)
{
    af_tracer_provider *p = NULL;
    af_exporter *e = NULL;
    af_span_processor *proc = NULL;
    if (af_tracer_provider_new(NULL, &p) != 0 || af_exporter_new(&ops, NULL, &e) != 0 ||
        af_batch_processor_new(e, NULL, &proc) != 0 || af_tracer_provider_add_processor(p, proc))
        return 1;
    af_tracer *t = af_tracer_provider_get_tracer(p, "alone", "1", NULL);
    for (int i = 0; i < 100; i++) {
        af_span s = af_span_start(t, i == 99 ? "last" : "span", NULL);
        af_span_set_int(s, "i", i);
        af_span_end(s);
    }
    af_tracer_provider_free(p); /* flushes the batch processor */
    if (exported != 100 || strcmp(last_name, "last") != 0) {
        fprintf(stderr, "exported %u spans, last %s\n", exported, last_name);
        return 1;
    }
    printf("ok\n");
    return 0;
}
