/*
 * GPU alerts: the threshold table evaluated per sample (de-duplication and hysteresis), and
 * the collector's alert ring (list, restore, acknowledge). Locking is the collector's; see
 * collector.c.
 */
#define AF_LOG_COMPONENT "gpu"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "gpu/gpu_int.h"
#include "util/str.h"
#include "util/timeutil.h"

/* ---------------------------------------------------------------------------------------- */
/* Alerts.                                                                                   */

/* Level of a "high" condition with hysteresis: raised at >= threshold, kept until the value
 * drops below threshold - hysteresis. */
static af_gpu_level high_level(double v, double warn, double crit, double hyst, af_gpu_level cur)
{
    if (v >= crit || (cur == AF_GPU_CRITICAL && v >= crit - hyst))
        return AF_GPU_CRITICAL;
    if (v >= warn || (cur >= AF_GPU_WARNING && v >= warn - hyst))
        return AF_GPU_WARNING;
    return AF_GPU_HEALTHY;
}

static void raise_alert(af_gpu_collector *c, new_alerts *na, const af_gpu_sample *m,
                        const char *type, af_gpu_level sev, double value, double threshold,
                        const char *fmt)
{
    af_gpu_alert *a = &na->a[na->n < 8 ? na->n++ : 7];
    memset(a, 0, sizeof(*a));
    a->id = c->next_alert_id++;
    af__strlcpy(a->gpu_id, m->gpu_id, sizeof(a->gpu_id));
    af__strlcpy(a->type, type, sizeof(a->type));
    a->severity = sev;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    snprintf(a->message, sizeof(a->message), fmt, m->gpu_id);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    a->value = value;
    a->threshold = threshold;
    a->timestamp_ns = m->timestamp_ns;
    size_t slot = (c->a_head + c->a_len) % c->a_cap;
    if (c->a_len == c->a_cap)
        c->a_head = (c->a_head + 1) % c->a_cap;
    else
        c->a_len++;
    c->alerts[slot] = *a;
}

/* A "high" rule: fire when the level rises (new condition or escalation). */
static void eval_high(af_gpu_collector *c, new_alerts *na, gstate *gs, int cond,
                      const af_gpu_sample *m, const char *type, double v, double warn, double crit,
                      const char *msg_warn, const char *msg_crit)
{
    af_gpu_level cur = gs->level[cond];
    af_gpu_level nl = high_level(v, warn, crit, c->th.hysteresis, cur);
    if (nl > cur)
        raise_alert(c, na, m, type, nl, v, nl == AF_GPU_CRITICAL ? crit : warn,
                    nl == AF_GPU_CRITICAL ? msg_crit : msg_warn);
    gs->level[cond] = nl;
}

void af__gpu_collector_evaluate(af_gpu_collector *c, gstate *gs, const af_gpu_sample *prev,
                                const af_gpu_sample *m, new_alerts *na)
{
    const af_gpu_thresholds *t = &c->th;
    if (m->valid & AF_GPU_F_TEMPERATURE)
        eval_high(c, na, gs, COND_TEMP, m, "temperature", m->temperature, t->temperature_warning,
                  t->temperature_critical, "GPU %s temperature high",
                  "GPU %s temperature critically high");
    if ((m->valid & AF_GPU_F_MEMORY) && m->memory_total_mb)
        eval_high(c, na, gs, COND_MEM, m, "memory",
                  (double)m->memory_used_mb * 100.0 / (double)m->memory_total_mb, t->memory_warning,
                  t->memory_critical, "GPU %s memory usage high",
                  "GPU %s memory usage critically high");
    if ((m->valid & AF_GPU_F_POWER_DRAW) && (m->valid & AF_GPU_F_POWER_LIMIT) && m->power_limit > 0)
        eval_high(c, na, gs, COND_POWER, m, "power", m->power_draw * 100.0 / m->power_limit,
                  t->power_warning, t->power_critical, "GPU %s power usage high",
                  "GPU %s power usage critically high");
    if (!(m->valid & AF_GPU_F_UTIL_GPU))
        return;
    double u = m->utilization_gpu;
    bool high = u >= t->utilization_high ||
                (gs->level[COND_UTIL_HIGH] && u >= t->utilization_high - t->hysteresis);
    if (high && !gs->level[COND_UTIL_HIGH])
        raise_alert(c, na, m, "utilization", AF_GPU_HEALTHY, u, t->utilization_high,
                    "GPU %s utilization very high");
    gs->level[COND_UTIL_HIGH] = high ? AF_GPU_WARNING : AF_GPU_HEALTHY;
    bool low = u <= t->utilization_low ||
               (gs->level[COND_UTIL_LOW] && u <= t->utilization_low + t->hysteresis);
    if (low && !gs->level[COND_UTIL_LOW])
        raise_alert(c, na, m, "utilization", AF_GPU_HEALTHY, u, t->utilization_low,
                    "GPU %s utilization low");
    gs->level[COND_UTIL_LOW] = low ? AF_GPU_WARNING : AF_GPU_HEALTHY;
    /* Edge-triggered by nature: one alert per jump or per new process. */
    if (prev && (prev->valid & AF_GPU_F_UTIL_GPU) &&
        u - prev->utilization_gpu > t->utilization_jump)
        raise_alert(c, na, m, "utilization", AF_GPU_HEALTHY, u - prev->utilization_gpu,
                    t->utilization_jump, "GPU %s utilization increased significantly");
    if (prev && (prev->valid & AF_GPU_F_PROCESSES) && (m->valid & AF_GPU_F_PROCESSES) &&
        m->process_count > prev->process_count)
        raise_alert(c, na, m, "process", AF_GPU_HEALTHY, m->process_count, prev->process_count,
                    "New process started on GPU %s");
}

/* ---------------------------------------------------------------------------------------- */
/* Cycle.                                                                                    */

size_t af_gpu_collector_alerts(af_gpu_collector *c, const char *gpu_id, uint64_t since_ns,
                               af_gpu_alert *out, size_t cap)
{
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t j = 0; j < c->a_len; j++) {
        const af_gpu_alert *a = &c->alerts[(c->a_head + j) % c->a_cap];
        if (a->timestamp_ns <= since_ns || (gpu_id && strcmp(a->gpu_id, gpu_id) != 0))
            continue;
        if (k < cap)
            out[k] = *a;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

int af_gpu_collector_restore_alert(af_gpu_collector *c, const af_gpu_alert *a)
{
    if (!c || !a || !a->id)
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    size_t slot = (c->a_head + c->a_len) % c->a_cap;
    if (c->a_len == c->a_cap)
        c->a_head = (c->a_head + 1) % c->a_cap;
    else
        c->a_len++;
    c->alerts[slot] = *a;
    /* New alerts never reuse a saved id: a resolution must name one alert only. */
    if (a->id >= c->next_alert_id)
        c->next_alert_id = a->id + 1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int af_gpu_collector_ack_alert(af_gpu_collector *c, uint64_t alert_id)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&c->mu);
    for (size_t j = 0; j < c->a_len; j++) {
        af_gpu_alert *a = &c->alerts[(c->a_head + j) % c->a_cap];
        if (a->id == alert_id) {
            a->acknowledged = true;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}
