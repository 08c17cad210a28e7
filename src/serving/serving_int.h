/*
 * serving/serving_int.h - internals shared by the gateway's files: the backend handle, the
 * response cache and the routing decision (separate so unit tests can drive them directly).
 */
#ifndef AF_SERVING_SERVING_INT_H
#define AF_SERVING_SERVING_INT_H

#include "agentaflow/serving.h"

struct af_model_backend {
    const af_model_backend_ops *ops;
    void *self;
};

/* FNV-1a 64 over the length-prefixed fields (lengths as 8 little-endian bytes), so no two
 * different (model, input, max_tokens) triples feed the hash the same bytes. */
uint64_t af__serving_key_hash(const char *model, size_t model_len, const char *input,
                              size_t input_len, uint32_t max_tokens);

/* ---------------------------------------------------------------------------------------- */
/* Response cache: its own mutex; values are copied in and out.                              */

typedef struct af__cache af__cache;

typedef struct af__cached {
    char *output; /* malloc'd, NUL-terminated */
    size_t output_len;
    int64_t prompt_tokens;
    int64_t completion_tokens;
} af__cached;

/* ttl_ns 0 = the cache stores nothing. */
int af__cache_new(uint32_t max_entries, uint64_t ttl_ns, af__cache **out);
void af__cache_free(af__cache *c);
/* 1 and a fresh copy in *out on a hit (caller frees out->output), 0 on a miss or expiry,
 * -ENOMEM. `now` is af_monotonic_ns(). */
int af__cache_get(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, uint64_t now, af__cached *out);
/* Stores a copy (replacing an entry with the same key). 0, or -ENOMEM. */
int af__cache_put(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, const af__cached *val, uint64_t now);
size_t af__cache_clean_expired(af__cache *c, uint64_t now);
/* Entries held, hits ever, entries found expired (on lookup or by cleaning). */
void af__cache_stats(af__cache *c, uint64_t *entries, uint64_t *hits, uint64_t *expired);

/* ---------------------------------------------------------------------------------------- */
/* Routing: pure decision over a model's instances; the caller holds the gateway lock.       */

typedef struct af__route_inst {
    bool available;
    uint32_t load;     /* in flight */
    uint32_t max_load; /* 0 = unlimited */
    bool has_latency;  /* at least one answer seen */
    double avg_latency_ms;
} af__route_inst;

/*
 * Picks the instance for `need` more requests. *cursor is the model's round-robin position
 * (advanced past the pick). Returns the index, -EHOSTDOWN when no instance is available
 * (or none exists) or AF_EFULL when every available one is at max_load.
 */
int af__route_pick(af_routing_strategy strategy, size_t *cursor, const af__route_inst *inst,
                   size_t n, uint32_t need);
/* Folds one latency sample into the moving average (alpha 0.2). */
void af__route_observe(af__route_inst *inst, double latency_ms);

#endif
