// Every public header, and every attribute constructor, compiled as C++11 with the project's
// warnings: the README promises the C API to C++ callers from C++11 on. Building this file is
// the check (it is part of the build, not a test that runs).
#include "agentaflow/cluster.h"
#include "agentaflow/common.h"
#include "agentaflow/config.h"
#include "agentaflow/cost.h"
#include "agentaflow/export.h"
#include "agentaflow/gpu.h"
#include "agentaflow/log.h"
#include "agentaflow/propagation.h"
#include "agentaflow/server.h"
#include "agentaflow/serving.h"
#include "agentaflow/store.h"
#include "agentaflow/trace.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/trace_sdk.h"
#include "agentaflow/tracing.h"

void af_cxx_all_headers(af_span s);

void af_cxx_all_headers(af_span s)
{
    static const char *const strs[] = {"a", "b"};
    static const bool bools[] = {true};
    static const int64_t ints[] = {1, 2};
    static const double dbls[] = {0.5};
    af_span_set_attrs(s, AF_ATTRS(AF_STR("s", "v"), AF_STRN("n", "abc", 2), AF_BOOL("b", true),
                                  AF_INT("i", 1), AF_DOUBLE("d", 2.5), AF_STR_ARRAY("sa", strs, 2),
                                  AF_BOOL_ARRAY("ba", bools, 1), AF_INT_ARRAY("ia", ints, 2),
                                  AF_DOUBLE_ARRAY("da", dbls, 1)));
    af_span none = AF_SPAN_NONE;
    af_span_add_event(none, "e", AF_ATTRS(AF_INT("k", 1)));
    af_span_end(af_span_start(NULL, "x", NULL));
}
