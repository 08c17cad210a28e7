/*
 * The memory exporter: a bounded ring of span copies, oldest dropped first. Tests read it
 * back; the daemon's trace store is built on it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"

struct af_memory_exporter {
    pthread_mutex_t mu;
    af_span_copy **ring;
    size_t cap;
    size_t head; /* index of the oldest */
    size_t count;
    size_t bytes, max_bytes; /* held; bound (0 = none) */
    uint64_t total;
    uint64_t failed;
    uint64_t last_success_ns;
};

/* Caller holds mu and count > 0. */
static void drop_oldest(af_memory_exporter *m)
{
    af_span_copy *old = m->ring[m->head];
    m->bytes -= af_span_copy_bytes(old);
    af_span_copy_release(old);
    m->head = (m->head + 1) % m->cap;
    m->count--;
}

static int mem_export(void *self, const af_span_data *const *spans, size_t n, uint64_t deadline)
{
    (void)deadline;
    af_memory_exporter *m = self;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        af_span_copy *c = af_span_copy_new(spans[i]);
        pthread_mutex_lock(&m->mu);
        if (!c) {
            m->failed++;
            rc = -ENOMEM;
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        size_t cb = af_span_copy_bytes(c);
        if (m->max_bytes && cb > m->max_bytes) {
            /* Keeping it would mean evicting everything and still being over the bound. */
            af_span_copy_release(c);
        } else {
            while (m->count &&
                   (m->count == m->cap || (m->max_bytes && m->bytes + cb > m->max_bytes)))
                drop_oldest(m);
            m->ring[(m->head + m->count) % m->cap] = c;
            m->count++;
            m->bytes += cb;
        }
        m->total++;
        m->last_success_ns = af_now_ns();
        pthread_mutex_unlock(&m->mu);
    }
    return rc;
}

static void mem_destroy(void *self)
{
    af_memory_exporter *m = self;
    af_memory_exporter_clear(m);
    pthread_mutex_destroy(&m->mu);
    free(m->ring);
    free(m);
}

static void mem_health(void *self, af_exporter_health *out)
{
    af_memory_exporter *m = self;
    pthread_mutex_lock(&m->mu);
    out->spans_exported = m->total;
    out->spans_failed = m->failed;
    out->last_success_ns = m->last_success_ns;
    pthread_mutex_unlock(&m->mu);
}

/* The lock is held only for ring updates, never across I/O: taking it before fork() waits a
 * moment at most, and the child gets a ring no thread was half-way through changing. */
static void mem_atfork(void *self, af_fork_phase phase)
{
    af_memory_exporter *m = self;
    if (phase == AF_FORK_PREPARE)
        pthread_mutex_lock(&m->mu);
    else if (phase == AF_FORK_PARENT)
        pthread_mutex_unlock(&m->mu);
    else
        pthread_mutex_init(&m->mu, NULL); /* the locker's thread does not exist here */
}

static const af_exporter_ops mem_ops = {
    .type = "memory",
    .export_spans = mem_export,
    .destroy = mem_destroy,
    .health = mem_health,
    .atfork = mem_atfork,
};

int af_memory_exporter_new(size_t capacity, af_exporter **out, af_memory_exporter **out_handle)
{
    *out = NULL;
    if (out_handle)
        *out_handle = NULL;
    af_memory_exporter *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->cap = capacity ? capacity : 4096;
    m->ring = calloc(m->cap, sizeof(*m->ring));
    if (!m->ring) {
        free(m);
        return -ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    int rc = af_exporter_new(&mem_ops, m, out);
    if (rc != 0)
        return rc;
    if (out_handle)
        *out_handle = m;
    return 0;
}

size_t af_memory_exporter_count(af_memory_exporter *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void af_memory_exporter_set_max_bytes(af_memory_exporter *m, size_t max_bytes)
{
    pthread_mutex_lock(&m->mu);
    m->max_bytes = max_bytes;
    pthread_mutex_unlock(&m->mu);
}

size_t af_memory_exporter_bytes(af_memory_exporter *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->bytes;
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t af_memory_exporter_total(af_memory_exporter *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->total;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t af_memory_exporter_snapshot(af_memory_exporter *m, af_span_copy **out, size_t cap)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->count < cap ? m->count : cap;
    for (size_t i = 0; i < n; i++) {
        out[i] = m->ring[(m->head + i) % m->cap];
        af_span_copy_retain(out[i]);
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

void af_memory_exporter_clear(af_memory_exporter *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->count; i++)
        af_span_copy_release(m->ring[(m->head + i) % m->cap]);
    m->head = 0;
    m->count = 0;
    m->bytes = 0;
    pthread_mutex_unlock(&m->mu);
}
