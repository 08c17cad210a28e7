/*
 * bench_collector_down: memory and shutdown time while the collector is unreachable.
 *
 * A provider with a batch processor feeds the OTLP/HTTP exporter aimed at a loopback port
 * nothing listens on. One thread produces spans at a fixed rate (default 100 000/s for 60 s)
 * while RSS is sampled every second from /proc/self/statm. Memory must stay flat (bounded
 * queue, bounded retries; docs/standards.md, a collector that is down) and shutdown must stay
 * bounded.
 *
 * usage: bench_collector_down [seconds (60)] [spans_per_second (100000)]
 * Output: "name value unit" lines.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agentaflow/export.h"
#include "agentaflow/log.h"
#include "agentaflow/trace.h"
#include "agentaflow/trace_sdk.h"

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A loopback port that was free a moment ago: connections to it are refused. */
static unsigned closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void sleep_until(uint64_t mono_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u),
                          .tv_nsec = (long)(mono_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

int main(int argc, char **argv)
{
    unsigned seconds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 60;
    unsigned rate = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
    if (!seconds || !rate) {
        fprintf(stderr, "usage: %s [seconds] [spans_per_second]\n", argv[0]);
        return 2;
    }
    /* One warning per 10 s from the exporter is expected; keep stderr readable. */
    af_log_set_level(AF_LOG_ERROR);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/traces", closed_port());
    af_otlp_http_opts eo;
    af_otlp_http_opts_init(&eo);
    eo.endpoint = url;
    af_exporter *exp = NULL;
    af_span_processor *bsp = NULL;
    af_tracer_provider *tp = NULL;
    af_resource *res = NULL;
    af_batch_processor_opts bo;
    af_batch_processor_opts_init(&bo);
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    if (af_otlp_http_exporter_new(&eo, &exp) || af_batch_processor_new(exp, &bo, &bsp) ||
        af_resource_new(AF_ATTRS(AF_STR("service.name", "bench-collector-down")), &res)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    po.resource = res;
    po.sampler = af_sampler_always_on();
    if (af_tracer_provider_new(&po, &tp) || af_tracer_provider_add_processor(tp, bsp)) {
        fprintf(stderr, "provider setup failed\n");
        return 1;
    }
    af_tracer *tr = af_tracer_provider_get_tracer(tp, "bench", "1.0", NULL);

    long rss_start = rss_kib(), rss_max = rss_start;
    /* Spans go out in 1 ms ticks so the rate is steady rather than bursty. */
    uint64_t per_tick = rate / 1000 ? rate / 1000 : 1;
    uint64_t tick_ns = per_tick * 1000000000u / rate;
    uint64_t t0 = af_monotonic_ns(), next = t0, next_sample = t0 + 1000000000u;
    uint64_t end = t0 + (uint64_t)seconds * 1000000000u, produced = 0;
    while (next < end) {
        for (uint64_t i = 0; i < per_tick; i++) {
            af_span s = af_span_start_child(
                tr, "gpu.schedule", AF_SPAN_KIND_INTERNAL, NULL,
                AF_ATTRS(AF_STR("gpu.id", "gpu-0"), AF_INT("workload.priority", 3)));
            af_span_end(s);
        }
        produced += per_tick;
        next += tick_ns;
        uint64_t now = af_monotonic_ns();
        if (now >= next_sample) {
            long r = rss_kib();
            if (r > rss_max)
                rss_max = r;
            next_sample += 1000000000u;
        }
        if (next > now)
            sleep_until(next);
    }
    long rss_end = rss_kib();
    if (rss_end > rss_max)
        rss_max = rss_end;
    double achieved = (double)produced * 1e9 / (double)(af_monotonic_ns() - t0);

    uint64_t s0 = af_monotonic_ns();
    af_tracer_provider_shutdown(tp, 5000);
    uint64_t shutdown_ms = (af_monotonic_ns() - s0) / 1000000u;
    af_provider_stats st;
    af_tracer_provider_stats(tp, &st);
    af_exporter_health h;
    af_exporter_health_get(exp, &h);

    printf("collector_down_spans_produced %llu spans\n", (unsigned long long)produced);
    printf("collector_down_rate %.0f spans/s\n", achieved);
    printf("collector_down_rss_start_kib %ld kib\n", rss_start);
    printf("collector_down_rss_max_kib %ld kib\n", rss_max);
    printf("collector_down_rss_end_kib %ld kib\n", rss_end);
    printf("collector_down_spans_dropped %llu spans\n", (unsigned long long)st.spans_dropped);
    printf("collector_down_spans_failed %llu spans\n", (unsigned long long)st.spans_failed);
    printf("collector_down_export_retries %llu retries\n", (unsigned long long)h.retries);
    printf("collector_down_shutdown_ms %llu ms\n", (unsigned long long)shutdown_ms);
    af_tracer_provider_free(tp);
    return 0;
}
