/* JSON views of GPU metrics with the original project's keys; invalid fields are null. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_int.h"

static void key(af_buf *b, const char *k, bool *first)
{
    if (!*first)
        af__buf_putc(b, ',');
    *first = false;
    af__buf_json_string(b, k, strlen(k));
    af__buf_putc(b, ':');
}

static void kstr(af_buf *b, const char *k, const char *v, bool *first)
{
    key(b, k, first);
    af__buf_json_string(b, v, strlen(v));
}

static void knum(af_buf *b, const char *k, double v, bool *first)
{
    key(b, k, first);
    af__gpu_json_num(b, v);
}

static void kuint(af_buf *b, const char *k, uint64_t v, bool *first)
{
    key(b, k, first);
    af__buf_printf(b, "%llu", (unsigned long long)v);
}

static void ktime(af_buf *b, const char *k, uint64_t ns, bool *first)
{
    key(b, k, first);
    af__gpu_json_time(b, ns);
}

/* A numeric field that may be unsupported by the device. */
static void kopt(af_buf *b, const char *k, double v, bool valid, bool *first)
{
    key(b, k, first);
    if (valid)
        af__gpu_json_num(b, v);
    else
        af__buf_puts(b, "null");
}

int af_gpu_sample_json(const af_gpu_sample *s, char **out)
{
    af_buf b;
    af__buf_init(&b);
    bool f = true;
    uint32_t v = s->valid;
    af__buf_putc(&b, '{');
    kstr(&b, "gpu_id", s->gpu_id, &f);
    kstr(&b, "name", s->name, &f);
    kstr(&b, "uuid", s->uuid, &f);
    kopt(&b, "utilization_gpu", s->utilization_gpu, v & AF_GPU_F_UTIL_GPU, &f);
    kopt(&b, "utilization_memory", s->utilization_memory, v & AF_GPU_F_UTIL_MEMORY, &f);
    kopt(&b, "memory_total", (double)s->memory_total_mb, v & AF_GPU_F_MEMORY, &f);
    kopt(&b, "memory_used", (double)s->memory_used_mb, v & AF_GPU_F_MEMORY, &f);
    kopt(&b, "memory_free", (double)s->memory_free_mb, v & AF_GPU_F_MEMORY, &f);
    kopt(&b, "temperature", s->temperature, v & AF_GPU_F_TEMPERATURE, &f);
    kopt(&b, "power_draw", s->power_draw, v & AF_GPU_F_POWER_DRAW, &f);
    kopt(&b, "power_limit", s->power_limit, v & AF_GPU_F_POWER_LIMIT, &f);
    kopt(&b, "fan_speed", s->fan_speed, v & AF_GPU_F_FAN, &f);
    kopt(&b, "clock_graphics", s->clock_graphics, v & AF_GPU_F_CLOCK_GRAPHICS, &f);
    kopt(&b, "clock_memory", s->clock_memory, v & AF_GPU_F_CLOCK_MEMORY, &f);
    kopt(&b, "process_count", s->process_count, v & AF_GPU_F_PROCESSES, &f);
    kopt(&b, "encoder_utilization", s->encoder_utilization, v & AF_GPU_F_ENCODER, &f);
    kopt(&b, "decoder_utilization", s->decoder_utilization, v & AF_GPU_F_DECODER, &f);
    ktime(&b, "timestamp", s->timestamp_ns, &f);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}

int af_gpu_stats_json(const af_gpu_stats *s, char **out)
{
    af_buf b;
    af__buf_init(&b);
    bool f = true;
    af__buf_putc(&b, '{');
    kstr(&b, "gpu_id", s->gpu_id, &f);
    kuint(&b, "period", s->period_ns, &f); /* Go's time.Duration: integer nanoseconds */
    knum(&b, "average_utilization", s->average_utilization, &f);
    knum(&b, "peak_utilization", s->peak_utilization, &f);
    knum(&b, "average_memory_usage", s->average_memory_usage, &f);
    kuint(&b, "peak_memory_usage", s->peak_memory_usage, &f);
    knum(&b, "average_temperature", s->average_temperature, &f);
    knum(&b, "max_temperature", s->max_temperature, &f);
    knum(&b, "average_power_draw", s->average_power_draw, &f);
    knum(&b, "max_power_draw", s->max_power_draw, &f);
    knum(&b, "total_energy_consumed", s->total_energy_consumed, &f);
    knum(&b, "idle_time_percentage", s->idle_time_percentage, &f);
    knum(&b, "efficiency_score", s->efficiency_score, &f);
    kuint(&b, "process_switches", s->process_switches, &f);
    knum(&b, "uptime_hours", s->uptime_hours, &f);
    ktime(&b, "start_time", s->start_time_ns, &f);
    ktime(&b, "end_time", s->end_time_ns, &f);
    kuint(&b, "sample_count", s->sample_count, &f);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}

static void alert_obj(af_buf *b, const af_gpu_alert *a)
{
    bool f = true;
    af__buf_putc(b, '{');
    kuint(b, "id", a->id, &f);
    kstr(b, "gpu_id", a->gpu_id, &f);
    kstr(b, "type", a->type, &f);
    kstr(b, "severity", af_gpu_severity_name(a->severity), &f);
    kstr(b, "message", a->message, &f);
    knum(b, "value", a->value, &f);
    knum(b, "threshold", a->threshold, &f);
    ktime(b, "timestamp", a->timestamp_ns, &f);
    key(b, "acknowledged", &f);
    af__buf_puts(b, a->acknowledged ? "true" : "false");
    af__buf_putc(b, '}');
}

int af_gpu_alert_json(const af_gpu_alert *a, char **out)
{
    af_buf b;
    af__buf_init(&b);
    alert_obj(&b, a);
    return af__buf_finish(&b, out);
}

static void str_array(af_buf *b, const char *k, const char (*items)[96], uint32_t n, bool *f)
{
    key(b, k, f);
    af__buf_putc(b, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__buf_json_string(b, items[i], strlen(items[i]));
    }
    af__buf_putc(b, ']');
}

int af_gpu_health_json(const af_gpu_health *h, char **out)
{
    af_buf b;
    af__buf_init(&b);
    bool f = true;
    af__buf_putc(&b, '{');
    kstr(&b, "gpu_id", h->gpu_id, &f);
    kstr(&b, "status", af_gpu_level_name(h->status), &f);
    ktime(&b, "timestamp", h->timestamp_ns, &f);
    kstr(&b, "temperature_status", af_gpu_level_name(h->temperature_status), &f);
    kstr(&b, "memory_status", af_gpu_level_name(h->memory_status), &f);
    kstr(&b, "power_status", af_gpu_level_name(h->power_status), &f);
    kstr(&b, "utilization_status", h->utilization_status, &f);
    str_array(&b, "issues", h->issues, h->n_issues, &f);
    str_array(&b, "recommendations", h->recommendations, h->n_recommendations, &f);
    key(&b, "alerts", &f);
    af__buf_putc(&b, '[');
    for (uint32_t i = 0; i < h->n_alerts; i++) {
        if (i)
            af__buf_putc(&b, ',');
        alert_obj(&b, &h->alerts[i]);
    }
    af__buf_puts(&b, "]}");
    return af__buf_finish(&b, out);
}

int af_gpu_overview_json(const af_gpu_overview *o, char **out)
{
    af_buf b;
    af__buf_init(&b);
    bool f = true;
    af__buf_putc(&b, '{');
    kuint(&b, "total_gpus", o->total_gpus, &f);
    kuint(&b, "active_gpus", o->active_gpus, &f);
    kuint(&b, "healthy_gpus", o->healthy_gpus, &f);
    knum(&b, "avg_utilization", o->avg_utilization, &f);
    kuint(&b, "memory_total_mb", o->memory_total_mb, &f);
    kuint(&b, "memory_used_mb", o->memory_used_mb, &f);
    kuint(&b, "memory_available_mb", o->memory_available_mb, &f);
    knum(&b, "memory_utilization", o->memory_utilization, &f);
    kuint(&b, "total_processes", o->total_processes, &f);
    /* The original printed a Go duration string ("3s"). */
    key(&b, "collection_interval", &f);
    if (o->collection_interval_ms % 1000 == 0)
        af__buf_printf(&b, "\"%us\"", o->collection_interval_ms / 1000);
    else
        af__buf_printf(&b, "\"%ums\"", o->collection_interval_ms);
    ktime(&b, "timestamp", o->timestamp_ns, &f);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}

int af_gpu_efficiency_json(const af_gpu_efficiency *e, char **out)
{
    af_buf b;
    af__buf_init(&b);
    bool f = true;
    af__buf_putc(&b, '{');
    kstr(&b, "gpu_id", e->gpu_id, &f);
    knum(&b, "avg_utilization", e->avg_utilization, &f);
    knum(&b, "avg_memory_util", e->avg_memory_util, &f);
    knum(&b, "idle_time_percent", e->idle_time_percent, &f);
    knum(&b, "avg_power_efficiency", e->avg_power_efficiency, &f);
    knum(&b, "max_temperature", e->max_temperature, &f);
    knum(&b, "min_temperature", e->min_temperature, &f);
    kuint(&b, "sample_count", e->sample_count, &f);
    knum(&b, "duration_minutes", e->duration_minutes, &f);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}

int af_gpu_utilization_json(const af_gpu_utilization *u, char **out)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_printf(&b,
                   "{\"total_gpus\":%u,\"available_gpus\":%u,\"active_gpus\":%u,"
                   "\"average_utilization\":",
                   u->total_gpus, u->available_gpus, u->active_gpus);
    af__gpu_json_num(&b, u->average_utilization);
    af__buf_printf(&b,
                   ",\"memory_total_mb\":%llu,\"memory_used_mb\":%llu,"
                   "\"memory_available_mb\":%llu,\"memory_utilization\":",
                   (unsigned long long)u->memory_total_mb, (unsigned long long)u->memory_used_mb,
                   (unsigned long long)u->memory_available_mb);
    af__gpu_json_num(&b, u->memory_utilization);
    af__buf_printf(&b, ",\"pending_workloads\":%u,\"running_workloads\":%u,\"utilization_goal\":",
                   u->pending_workloads, u->running_workloads);
    af__gpu_json_num(&b, u->utilization_goal);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}
