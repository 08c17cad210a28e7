/*
 * Placement index for scheduling passes: a treap keyed by (k1, k2, slot) and augmented with
 * subtree maxima of free memory. Keys are unique because the slot (registration position) is
 * the last component, which is also what makes every tie-break deterministic. Priorities come
 * from a fixed hash of the slot, so the shape (and the pass time) is reproducible.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_int.h"

void af__gpu_place_free(af_gpu_place *p)
{
    free(p->n);
    memset(p, 0, sizeof(*p));
    p->root = -1;
}

int af__gpu_place_reset(af_gpu_place *p, uint32_t n)
{
    p->root = -1;
    if (n <= p->cap)
        return 0;
    af_gpu_place_node *nn = realloc(p->n, (size_t)n * sizeof(*nn));
    if (!nn)
        return -ENOMEM;
    p->n = nn;
    p->cap = n;
    return 0;
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

static void pull(af_gpu_place *p, int32_t t)
{
    af_gpu_place_node *x = &p->n[t];
    const af_gpu_place_node *l = x->left >= 0 ? &p->n[x->left] : NULL;
    const af_gpu_place_node *r = x->right >= 0 ? &p->n[x->right] : NULL;
    x->agg = max3(x->own, l ? l->agg : 0, r ? r->agg : 0);
    x->agg_empty = max3(x->own_empty, l ? l->agg_empty : 0, r ? r->agg_empty : 0);
}

/* Key of node t compared with (k1, k2, slot): <0, 0, >0. */
static int cmp_node(const af_gpu_place *p, int32_t t, double k1, uint64_t k2, uint32_t slot)
{
    if (p->n[t].k1 != k1)
        return p->n[t].k1 < k1 ? -1 : 1;
    if (p->n[t].k2 != k2)
        return p->n[t].k2 < k2 ? -1 : 1;
    if ((uint32_t)t != slot)
        return (uint32_t)t < slot ? -1 : 1;
    return 0;
}

/* Splits t into keys < (k1,k2,slot) and the rest. */
static void split(af_gpu_place *p, int32_t t, double k1, uint64_t k2, uint32_t slot, int32_t *a,
                  int32_t *b)
{
    if (t < 0) {
        *a = *b = -1;
        return;
    }
    if (cmp_node(p, t, k1, k2, slot) < 0) {
        split(p, p->n[t].right, k1, k2, slot, &p->n[t].right, b);
        *a = t;
    } else {
        split(p, p->n[t].left, k1, k2, slot, a, &p->n[t].left);
        *b = t;
    }
    pull(p, t);
}

static int32_t merge(af_gpu_place *p, int32_t a, int32_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    if (p->n[a].prio > p->n[b].prio) {
        p->n[a].right = merge(p, p->n[a].right, b);
        pull(p, a);
        return a;
    }
    p->n[b].left = merge(p, a, p->n[b].left);
    pull(p, b);
    return b;
}

void af__gpu_place_insert(af_gpu_place *p, uint32_t slot, double k1, uint64_t k2, uint64_t own,
                          uint64_t own_empty)
{
    int32_t t = (int32_t)slot;
    p->n[t].left = p->n[t].right = -1;
    p->n[t].prio = mix(slot + 0x9e3779b9U);
    p->n[t].k1 = k1;
    p->n[t].k2 = k2;
    p->n[t].own = own;
    p->n[t].own_empty = own_empty;
    pull(p, t);
    int32_t a, b;
    split(p, p->root, k1, k2, slot, &a, &b);
    p->root = merge(p, merge(p, a, t), b);
}

/* Removes the leftmost node of t (which is `slot`). */
static int32_t drop_min(af_gpu_place *p, int32_t t)
{
    if (p->n[t].left < 0)
        return p->n[t].right;
    p->n[t].left = drop_min(p, p->n[t].left);
    pull(p, t);
    return t;
}

void af__gpu_place_erase(af_gpu_place *p, uint32_t slot)
{
    int32_t a, b;
    split(p, p->root, p->n[slot].k1, p->n[slot].k2, slot, &a, &b);
    if (b >= 0)
        b = drop_min(p, b);
    p->root = merge(p, a, b);
}

static int32_t find(const af_gpu_place *p, int32_t t, const af_gpu_place_key *lo, uint64_t need,
                    bool empty)
{
    while (t >= 0) {
        if ((empty ? p->n[t].agg_empty : p->n[t].agg) < need)
            return -1;
        if (cmp_node(p, t, lo->k1, lo->k2, lo->slot) < 0) {
            t = p->n[t].right; /* everything left of t is below lo too */
            continue;
        }
        int32_t r = find(p, p->n[t].left, lo, need, empty);
        if (r >= 0)
            return r;
        if ((empty ? p->n[t].own_empty : p->n[t].own) >= need)
            return t;
        t = p->n[t].right;
    }
    return -1;
}

int32_t af__gpu_place_find(const af_gpu_place *p, const af_gpu_place_key *lo, uint64_t need,
                           bool empty)
{
    return find(p, p->root, lo, need, empty);
}
