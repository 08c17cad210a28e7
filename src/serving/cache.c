/*
 * Response cache: a chained hash table plus an LRU list. Keys are compared in full (model,
 * input bytes, max_tokens), the hash only picks the chain, so collisions cannot return the
 * wrong answer. Values are copied on put and on get: a hit never shares memory with another
 * request (the original handed every hit the same response object).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "serving/serving_int.h"
#include "util/str.h"

typedef struct centry {
    struct centry *chain;    /* hash chain */
    struct centry *lru_prev; /* towards most recently used */
    struct centry *lru_next; /* towards least recently used */
    uint64_t hash;
    char *model;
    char *input;
    size_t input_len;
    uint32_t max_tokens;
    uint64_t expires;
    uint64_t hits;
    af__cached val;
} centry;

struct af__cache {
    pthread_mutex_t mu;
    centry **table;
    size_t mask;
    centry *lru_head, *lru_tail;
    uint64_t ttl_ns;
    uint32_t max_entries;
    uint64_t n, hits, expired;
};

uint64_t af__serving_key_hash(const char *model, size_t model_len, const char *input,
                              size_t input_len, uint32_t max_tokens)
{
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(byte) (h = (h ^ (uint8_t)(byte)) * 0x100000001b3ull)
    for (int i = 0; i < 8; i++)
        MIX((uint64_t)model_len >> (8 * i));
    for (size_t i = 0; i < model_len; i++)
        MIX(model[i]);
    for (int i = 0; i < 8; i++)
        MIX((uint64_t)input_len >> (8 * i));
    for (size_t i = 0; i < input_len; i++)
        MIX(input[i]);
    for (int i = 0; i < 4; i++)
        MIX(max_tokens >> (8 * i));
#undef MIX
    return h;
}

int af__cache_new(uint32_t max_entries, uint64_t ttl_ns, af__cache **out)
{
    af__cache *c = calloc(1, sizeof(*c));
    if (!c)
        goto fail;
    size_t slots = 16;
    while (slots < (size_t)max_entries * 2 && slots < ((size_t)1 << 24))
        slots <<= 1;
    c->table = calloc(slots, sizeof(*c->table));
    if (!c->table)
        goto fail;
    c->mask = slots - 1;
    c->ttl_ns = ttl_ns;
    c->max_entries = max_entries ? max_entries : 1;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    if (c)
        free(c->table);
    free(c);
    return -ENOMEM;
}

static void lru_unlink(af__cache *c, centry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(af__cache *c, centry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void entry_free(centry *e)
{
    free(e->model);
    free(e->input);
    free(e->val.output);
    free(e);
}

/* Unlinks e from its chain and the LRU list and frees it. */
static void entry_remove(af__cache *c, centry *e)
{
    centry **pp = &c->table[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    entry_free(e);
    c->n--;
}

void af__cache_free(af__cache *c)
{
    if (!c)
        return;
    centry *e = c->lru_head;
    while (e) {
        centry *next = e->lru_next;
        entry_free(e);
        e = next;
    }
    free(c->table);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static centry *find(af__cache *c, uint64_t h, const char *model, const char *input,
                    size_t input_len, uint32_t max_tokens)
{
    for (centry *e = c->table[h & c->mask]; e; e = e->chain)
        if (e->hash == h && e->input_len == input_len && e->max_tokens == max_tokens &&
            strcmp(e->model, model) == 0 && memcmp(e->input, input, input_len) == 0)
            return e;
    return NULL;
}

int af__cache_get(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, uint64_t now, af__cached *out)
{
    if (!c->ttl_ns)
        return 0;
    uint64_t h = af__serving_key_hash(model, strlen(model), input, input_len, max_tokens);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    centry *e = find(c, h, model, input, input_len, max_tokens);
    if (e && now >= e->expires) {
        entry_remove(c, e);
        c->expired++;
        e = NULL;
    }
    if (e) {
        char *copy = malloc(e->val.output_len + 1);
        if (!copy) {
            rc = -ENOMEM;
        } else {
            memcpy(copy, e->val.output, e->val.output_len + 1);
            *out = e->val;
            out->output = copy;
            e->hits++;
            c->hits++;
            lru_unlink(c, e);
            lru_push_front(c, e);
            rc = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int af__cache_put(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, const af__cached *val, uint64_t now)
{
    if (!c->ttl_ns)
        return 0;
    centry *ne = calloc(1, sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    ne->hash = af__serving_key_hash(model, strlen(model), input, input_len, max_tokens);
    ne->model = af__strdup(model);
    ne->input = malloc(input_len ? input_len : 1);
    ne->val = *val;
    ne->val.output = malloc(val->output_len + 1);
    if (!ne->model || !ne->input || !ne->val.output) {
        entry_free(ne);
        return -ENOMEM;
    }
    memcpy(ne->input, input, input_len);
    memcpy(ne->val.output, val->output, val->output_len);
    ne->val.output[val->output_len] = '\0';
    ne->input_len = input_len;
    ne->max_tokens = max_tokens;
    ne->expires = now + c->ttl_ns;
    pthread_mutex_lock(&c->mu);
    centry *old = find(c, ne->hash, model, input, input_len, max_tokens);
    if (old)
        entry_remove(c, old);
    while (c->n >= c->max_entries && c->lru_tail)
        entry_remove(c, c->lru_tail);
    ne->chain = c->table[ne->hash & c->mask];
    c->table[ne->hash & c->mask] = ne;
    lru_push_front(c, ne);
    c->n++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

size_t af__cache_clean_expired(af__cache *c, uint64_t now)
{
    size_t removed = 0;
    pthread_mutex_lock(&c->mu);
    centry *e = c->lru_head;
    while (e) {
        centry *next = e->lru_next;
        if (now >= e->expires) {
            entry_remove(c, e);
            removed++;
        }
        e = next;
    }
    c->expired += removed;
    pthread_mutex_unlock(&c->mu);
    return removed;
}

void af__cache_stats(af__cache *c, uint64_t *entries, uint64_t *hits, uint64_t *expired)
{
    pthread_mutex_lock(&c->mu);
    *entries = c->n;
    *hits = c->hits;
    *expired = c->expired;
    pthread_mutex_unlock(&c->mu);
}
