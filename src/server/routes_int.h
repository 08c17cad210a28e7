/*
 * Private to the route files (routes.c and routes_*.c): the shared JSON/request helpers
 * (routes_json.c), the handlers the table in routes.c points at, and the types they share.
 */
#ifndef AF_SERVER_ROUTES_INT_H
#define AF_SERVER_ROUTES_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "server/server_int.h"

int af__server_submit_job(af__req *rq, af__resp *rs, af__job *j);

#define MAX_ALERTS 256

/* A write route's parsed request, kept until its change is durable and applied (persist.c):
 * the strings in `u` point into `doc`, which it holds. */
typedef struct write_ctx {
    json_t *doc;
    af_span_context parent;
    char id[AF_GPU_ID_MAX]; /* an id the route made up */
    union {
        af_cost_entry cost;
        af_workload_spec wl;
        af_gpu_spec gpu;
        uint64_t alert_id;
        bool complete;
    } u;
} write_ctx;

/* Derived views shared by several routes. */
typedef struct view {
    af_gpu_sample *samples; /* sized to the GPU count: a request never allocates more */
    size_t n;
    af_gpu_thresholds th;
    double avg_util, avg_temp, total_power, mem_total_mb, mem_used_mb;
    uint32_t active;
} view;

/* routes_json.c */
double af__finite_or_zero(double v);
void af__put_str(af_buf *b, const char *s);
void af__put_time(af_buf *b, uint64_t ns);
void af__put_json_take(af_buf *b, char *json);
bool af__component_present(af__resp *rs, const void *component, const char *name);
json_t *af__parse_object(af__req *rq, af__resp *rs);
bool af__get_str(json_t *o, const char *k, const char **out, af__resp *rs);
bool af__get_field_as(json_t *o, const char *k, af__field f, const char **out, af__resp *rs);
bool af__get_field(json_t *o, af__field f, const char **out, af__resp *rs);
bool af__get_num(json_t *o, const char *k, double lo, double hi, double *out, af__resp *rs);
bool af__get_bool(json_t *o, const char *k, bool *out, af__resp *rs);
void af__write_ctx_free(void *p);
write_ctx *af__write_ctx_new(af__req *rq, af__resp *rs, json_t *doc);
bool af__url_arg(af__req *rq, const char *name, char *buf, int len);
void af__view_load(af_server *s, view *v);
void af__view_free(view *v);
const char *af__gpu_state(const view *v, double util, double temp);
void af__put_system_stats(af_buf *b, const view *v);
void af__put_cost_summary(af_server *s, af_buf *b, af_cost_summary *keep);
size_t af__active_alerts(af_server *s, af_gpu_alert *out, size_t cap);
void af__put_performance(af_server *s, af_buf *b, const view *v, double total_cost);

/* routes_system.c */
int af__h_health(af__req *rq, af__resp *rs);
int af__h_metrics(af__req *rq, af__resp *rs);
int af__h_system_stats(af__req *rq, af__resp *rs);
int af__h_system_overview(af__req *rq, af__resp *rs);
int af__h_system_status(af__req *rq, af__resp *rs);
int af__h_performance(af__req *rq, af__resp *rs);
int af__h_performance_efficiency(af__req *rq, af__resp *rs);
int af__h_config(af__req *rq, af__resp *rs);
int af__h_ws_plain(af__req *rq, af__resp *rs);

/* routes_gpus.c */
/* serve --cluster: every fleet GPU as a sample (gpu_id "node/gpu-N", the node's last report
 * as its time) for the dashboard's view; *out malloc'd (NULL on ENOMEM, 0 returned). */
size_t af__fleet_samples(af_server *s, af_gpu_sample **out);
int af__h_gpus(af__req *rq, af__resp *rs);
int af__h_gpu_register(af__req *rq, af__resp *rs);
int af__h_gpu_metrics(af__req *rq, af__resp *rs);
int af__h_gpu_processes(af__req *rq, af__resp *rs);
int af__h_gpu_history(af__req *rq, af__resp *rs);
int af__h_gpu_stats(af__req *rq, af__resp *rs);
int af__h_gpu_health(af__req *rq, af__resp *rs);
int af__h_demo_trigger(af__req *rq, af__resp *rs);

/* routes_costs.c */
int af__h_costs(af__req *rq, af__resp *rs);
int af__h_cost_record(af__req *rq, af__resp *rs);
int af__h_costs_summary(af__req *rq, af__resp *rs);
int af__h_costs_forecast(af__req *rq, af__resp *rs);
int af__h_alerts(af__req *rq, af__resp *rs);
int af__h_alert_resolve(af__req *rq, af__resp *rs);
int af__h_alerts_summary(af__req *rq, af__resp *rs);

/* routes_workloads.c */
int af__h_workloads(af__req *rq, af__resp *rs);
int af__h_workload_submit(af__req *rq, af__resp *rs);
int af__h_workload_get(af__req *rq, af__resp *rs);
int af__h_workload_complete(af__req *rq, af__resp *rs);
int af__h_workload_cancel(af__req *rq, af__resp *rs);

/* routes_serving.c */
int af__h_models(af__req *rq, af__resp *rs);
int af__h_inference(af__req *rq, af__resp *rs);

/* routes_traces.c */
int af__h_traces(af__req *rq, af__resp *rs);
int af__h_trace(af__req *rq, af__resp *rs);

#endif
