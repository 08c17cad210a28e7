/*
 * The YAML loader: libyaml's document API (for line:column marks) walked against the key
 * table. Sections are not listed anywhere: a mapping is a section when some table key
 * starts with its dotted path, so adding a row to the table is all a new key needs.
 *
 * The walk only descends along known keys, so its depth is bounded by the schema; alias
 * cycles and "billion laughs" documents are never expanded. Mappings and lists are capped
 * so that quadratic duplicate checks stay cheap on hostile input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/config_int.h"
#include "config/models.h"
#include "util/str.h"

#define MAX_MAPPING_KEYS 256
#define MAX_LIST_ITEMS 1024

enum { SET_NONE = 0, SET_ALIAS = 1, SET_CANONICAL = 2 };

typedef struct load_ctx {
    const char *src;
    yaml_document_t *doc;
    af_tracing_config *cfg;
    af_config_diag *diag;
    size_t errors;
    int rc; /* -ENOMEM once an allocation failed; the walk then stops */
    uint8_t set_by[AF__CONFIG_MAX_KEYS];
} load_ctx;

static size_t key_index(const af__config_key *k)
{
    return (size_t)(k - af__config_keys);
}

static void diag_at(load_ctx *c, af_diag_severity sev, const yaml_node_t *n, const char *key,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void diag_at(load_ctx *c, af_diag_severity sev, const yaml_node_t *n, const char *key,
                    const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (sev == AF_DIAG_ERROR)
        c->errors++;
    uint32_t line = n ? (uint32_t)n->start_mark.line + 1 : 0;
    uint32_t col = n ? (uint32_t)n->start_mark.column + 1 : 0;
    if (af__diag_add(c->diag, sev, c->src, line, col, key, "%s", text) != 0)
        c->rc = -ENOMEM;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

static bool scalar_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) != 0 &&
        strcmp((const char *)n->tag, YAML_DEFAULT_SCALAR_TAG) != 0)
        return false;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* The scalar's text when it can be used as a C string, else NULL with an error reported. */
static const char *scalar_text(load_ctx *c, const yaml_node_t *n, const char *key)
{
    if (n->type != YAML_SCALAR_NODE)
        return NULL;
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
        diag_at(c, AF_DIAG_ERROR, n, key, "the value contains a NUL character");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

/* ---------------------------------------------------------------------------------------- */
/* Unknown keys.                                                                             */

/* Keeps the closest candidate. Candidates whose length differs by more than `limit` cannot
 * be within it, so the quadratic distance is computed only for plausible ones. */
static void consider(const char *cand, size_t cand_len, const char *full, size_t full_len,
                     unsigned limit, unsigned *best_d, const char **best, size_t *best_len)
{
    size_t diff = cand_len > full_len ? cand_len - full_len : full_len - cand_len;
    if (diff > limit)
        return;
    unsigned d = af__config_edit_distance(full, full_len, cand, cand_len);
    if (d < *best_d) {
        *best_d = d;
        *best = cand;
        *best_len = cand_len;
    }
}

static const char *const alias_keys[] = {"exporter_type", "jaeger_endpoint", "otlp_endpoint",
                                         "sample_rate",   "attributes",      "enabled_spans"};

/* Writes the closest known key (or section) to `full` into out; false when none is close. */
static bool suggest(const char *full, char *out, size_t out_len)
{
    size_t full_len = strlen(full);
    const char *leaf = strrchr(full, '.');
    leaf = leaf ? leaf + 1 : full;
    size_t leaf_len = strlen(leaf);
    unsigned best_d = 255;
    const char *best = NULL;
    size_t best_len = 0;
    /* One edit per three characters of the leaf, between 1 and 3. */
    unsigned limit = leaf_len >= 9 ? 3 : leaf_len >= 6 ? 2 : 1;

    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *k = af__config_keys[i].info.key;
        consider(k, strlen(k), full, full_len, limit, &best_d, &best, &best_len);
        for (const char *dot = strchr(k, '.'); dot; dot = strchr(dot + 1, '.'))
            consider(k, (size_t)(dot - k), full, full_len, limit, &best_d, &best, &best_len);
    }
    for (size_t i = 0; i < sizeof alias_keys / sizeof alias_keys[0]; i++)
        consider(alias_keys[i], strlen(alias_keys[i]), full, full_len, limit, &best_d, &best,
                 &best_len);
    if (best && best_d <= limit) {
        snprintf(out, out_len, "%.*s", (int)best_len, best);
        return true;
    }
    /* A truncated name ("otlp" for "otlp_http"): a known key or section that extends it. */
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *k = af__config_keys[i].info.key;
        if (strncmp(k, full, full_len) == 0 && k[full_len] == '_') {
            size_t end = full_len + strcspn(k + full_len, ".");
            snprintf(out, out_len, "%.*s", (int)end, k);
            return true;
        }
    }
    /* The right name at the wrong level: suggest where it lives. */
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *k = af__config_keys[i].info.key;
        const char *kl = strrchr(k, '.');
        kl = kl ? kl + 1 : k;
        if (strcmp(kl, leaf) == 0) {
            snprintf(out, out_len, "%s", k);
            return true;
        }
    }
    return false;
}

static void unknown_key(load_ctx *c, const yaml_node_t *key_node, const char *full)
{
    /* Once the diagnostics are full only the count matters; skip the suggestion search. */
    if (c->diag && c->diag->n_entries >= AF_CONFIG_DIAG_MAX) {
        c->diag->n_warnings++;
        c->diag->suppressed++;
        return;
    }
    char hint[160];
    if (suggest(full, hint, sizeof hint))
        diag_at(c, AF_DIAG_WARNING, key_node, full, "unknown key (ignored); did you mean \"%s\"?",
                hint);
    else
        diag_at(c, AF_DIAG_WARNING, key_node, full, "unknown key (ignored)");
}

/* ---------------------------------------------------------------------------------------- */
/* Values.                                                                                   */

static bool may_set(load_ctx *c, const af__config_key *k, bool via_alias)
{
    uint8_t *s = &c->set_by[key_index(k)];
    if (via_alias && *s == SET_CANONICAL)
        return false;
    *s = via_alias ? SET_ALIAS : SET_CANONICAL;
    return true;
}

static void set_scalar_node(load_ctx *c, const af__config_key *k, const yaml_node_t *v,
                            const char *shown_key, bool via_alias)
{
    char why[256];
    if (v->type != YAML_SCALAR_NODE) {
        af__config_expected(k, why, sizeof why);
        diag_at(c, AF_DIAG_ERROR, v, shown_key, "%s, got %s", why, node_kind(v));
        return;
    }
    const char *text = scalar_text(c, v, shown_key);
    if (!text)
        return;
    if (scalar_is_null(v)) {
        if (k->info.type == AF_CFG_STRING && (k->flags & AF__KEY_OPTIONAL)) {
            text = "";
        } else {
            af__config_expected(k, why, sizeof why);
            diag_at(c, AF_DIAG_ERROR, v, shown_key, "%s, got nothing", why);
            return;
        }
    }
    if (!may_set(c, k, via_alias)) {
        diag_at(c, AF_DIAG_INFO, v, shown_key, "ignored because %s is also set", k->info.key);
        return;
    }
    int rc = af__config_set_scalar(c->cfg, k, text, why, sizeof why);
    if (rc == -ENOMEM) {
        c->rc = rc;
    } else if (rc != 0 && k->info.secret) {
        diag_at(c, AF_DIAG_ERROR, v, shown_key, "%s", why); /* never quote a secret */
    } else if (rc != 0) {
        char got[96];
        af__config_quote(text, v->data.scalar.length, got, sizeof got);
        diag_at(c, AF_DIAG_ERROR, v, shown_key, "%s, got %s", why, got);
    }
}

/* Reads a mapping's key; NULL (error reported) when it is not a usable string. */
static const char *mapping_key(load_ctx *c, const yaml_node_t *kn, const char *where)
{
    if (kn->type != YAML_SCALAR_NODE) {
        diag_at(c, AF_DIAG_ERROR, kn, where[0] ? where : NULL, "expected a string key, got %s",
                node_kind(kn));
        return NULL;
    }
    return scalar_text(c, kn, where[0] ? where : NULL);
}

/* True (error reported) when pair i repeats the key of an earlier pair. */
static bool duplicate_key(load_ctx *c, const yaml_node_t *map, const yaml_node_pair_t *pair,
                          const char *shown_key, bool fold_case)
{
    const yaml_node_t *kn = yaml_document_get_node(c->doc, pair->key);
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
        const yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
        if (!qk || qk->type != YAML_SCALAR_NODE || qk->data.scalar.length != kn->data.scalar.length)
            continue;
        const char *a = (const char *)qk->data.scalar.value,
                   *b = (const char *)kn->data.scalar.value;
        bool same = fold_case ? strncasecmp(a, b, kn->data.scalar.length) == 0
                              : memcmp(a, b, kn->data.scalar.length) == 0;
        if (same) {
            diag_at(c, AF_DIAG_ERROR, kn, shown_key, "duplicate key (first given at line %lu)",
                    (unsigned long)qk->start_mark.line + 1);
            return true;
        }
    }
    return false;
}

static bool too_big(load_ctx *c, const yaml_node_t *n, const char *key, size_t count, size_t max)
{
    if (count <= max)
        return false;
    diag_at(c, AF_DIAG_ERROR, n, key, "more than %zu entries", max);
    return true;
}

/* headers: a mapping of header names to string values. The file's mapping replaces the
 * current one as a whole. */
/* Whether val is one of row k's enum_values (case-insensitive, as enum keys are). */
static bool enum_member(const af__config_key *k, const char *val)
{
    for (size_t i = 0; k->info.enum_values[i]; i++)
        if (strcasecmp(val, k->info.enum_values[i]) == 0)
            return true;
    return false;
}

static void set_map(load_ctx *c, const af__config_key *k, const yaml_node_t *v)
{
    char full[256];
    af_config_kv *list = NULL;
    size_t n = 0;
    if (!scalar_is_null(v)) {
        if (v->type != YAML_MAPPING_NODE) {
            char why[128];
            af__config_expected(k, why, sizeof why);
            diag_at(c, AF_DIAG_ERROR, v, k->info.key, "%s, got %s", why, node_kind(v));
            return;
        }
        size_t count = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (too_big(c, v, k->info.key, count, MAX_MAPPING_KEYS))
            return;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
            const char *name = mapping_key(c, kn, k->info.key);
            if (!name)
                continue;
            snprintf(full, sizeof full, "%s.%s", k->info.key, name);
            if (duplicate_key(c, v, p, full, true))
                continue;
            if (!af__config_header_name_ok(name)) {
                diag_at(c, AF_DIAG_ERROR, kn, full, "not a valid HTTP header name");
                continue;
            }
            /* Values are secrets: the messages never quote them. */
            if (vn->type != YAML_SCALAR_NODE || scalar_is_null(vn)) {
                diag_at(c, AF_DIAG_ERROR, vn, full, "expected a string value, got %s",
                        vn->type == YAML_SCALAR_NODE ? "nothing" : node_kind(vn));
                continue;
            }
            const char *val = scalar_text(c, vn, full);
            if (!val)
                continue;
            if (!af__config_header_value_ok(val)) {
                diag_at(c, AF_DIAG_ERROR, vn, full, "header values must not contain line breaks");
                continue;
            }
            if (k->info.enum_values && !enum_member(k, val)) {
                /* Not secret (the table says so for such maps): quoting helps the reader. */
                char allowed[160];
                af_config_key_bounds(&k->info, allowed, sizeof allowed);
                diag_at(c, AF_DIAG_ERROR, vn, full, "expected one of %s, got \"%s\"", allowed, val);
                continue;
            }
            if (af__config_kv_put(&list, &n, name, val, false, false) != 0) {
                c->rc = -ENOMEM;
                break;
            }
        }
    }
    if (c->rc != 0 || !may_set(c, k, false)) {
        af__config_kv_free(list, n);
        return;
    }
    size_t *cur_n;
    af_config_kv **cur = af__config_kv_slot(c->cfg, k, &cur_n);
    af__config_kv_free(*cur, *cur_n);
    *cur = list;
    *cur_n = n;
}

static const char *item_text(load_ctx *c, const yaml_node_t *n, const char *key);

/* A list of strings (server.allowed_hosts): replaced as a whole, and only when every entry
 * is valid, so a rejected list leaves the previous value like any other rejected value. */
static void set_list(load_ctx *c, const af__config_key *k, const yaml_node_t *v)
{
    char why[256], shown[300];
    char **items = NULL;
    size_t n = 0;
    bool bad = false;
    if (!scalar_is_null(v)) {
        if (v->type != YAML_SEQUENCE_NODE) {
            af__config_expected(k, why, sizeof why);
            diag_at(c, AF_DIAG_ERROR, v, k->info.key, "%s, got %s", why, node_kind(v));
            return;
        }
        size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (too_big(c, v, k->info.key, count, (size_t)k->info.max))
            return;
        if (count && !(items = calloc(count, sizeof *items))) {
            c->rc = -ENOMEM;
            return;
        }
        for (size_t i = 0; i < count && c->rc == 0; i++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
            snprintf(shown, sizeof shown, "%s[%zu]", k->info.key, i);
            const char *text = item_text(c, item, shown);
            if (!text) {
                bad = true;
            } else if (!af__config_list_item_ok(k, text, why, sizeof why)) {
                char got[96];
                af__config_quote(text, item->data.scalar.length, got, sizeof got);
                diag_at(c, AF_DIAG_ERROR, item, shown, "%s, got %s", why, got);
                bad = true;
            } else if (!(items[n++] = af__strdup(text))) {
                c->rc = -ENOMEM;
            }
        }
    }
    if (bad || c->rc != 0 || !may_set(c, k, false)) {
        af__config_list_free(items, n);
        return;
    }
    af__config_list_replace(c->cfg, k, items, n);
}

static const char *item_text(load_ctx *c, const yaml_node_t *n, const char *key)
{
    if (n->type != YAML_SCALAR_NODE || scalar_is_null(n)) {
        diag_at(c, AF_DIAG_ERROR, n, key, "expected a string, got %s",
                n->type == YAML_SCALAR_NODE ? "nothing" : node_kind(n));
        return NULL;
    }
    return scalar_text(c, n, key);
}

static int kv_add(load_ctx *c, af_config_kv **list, size_t *n, const yaml_node_t *at,
                  const char *shown, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i].key, key) == 0) {
            diag_at(c, AF_DIAG_WARNING, at, shown, "\"%s\" is given twice; the last one wins", key);
            break;
        }
    }
    if (af__config_kv_put(list, n, key, value, true, false) != 0) {
        c->rc = -ENOMEM;
        return -ENOMEM;
    }
    return 0;
}

/* resource_attributes: the document's list of {key, value} mappings, or (shorter) a mapping
 * of key to value. Values may be any scalar and are kept as their text. */
/* One item of the sequence form, "- key: K\n  value: V" (shown: its name in messages, as
 * "resource_attributes[2]"): diagnosed, or added to list. */
static void kv_list_item(load_ctx *c, yaml_node_t *item, const char *shown, af_config_kv **list,
                         size_t *n)
{
    if (item->type != YAML_MAPPING_NODE) {
        diag_at(c, AF_DIAG_ERROR, item, shown,
                "expected a mapping with \"key\" and \"value\", got %s", node_kind(item));
        return;
    }
    const char *key = NULL, *val = NULL;
    const yaml_node_t *key_at = item;
    bool bad = false;
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *name = mapping_key(c, kn, shown);
        if (!name) {
            bad = true;
            continue;
        }
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s", shown, name);
        if (duplicate_key(c, item, p, sub, false)) {
            bad = true;
        } else if (strcmp(name, "key") == 0) {
            key = item_text(c, vn, sub);
            key_at = vn;
            bad |= !key;
        } else if (strcmp(name, "value") == 0) {
            val = item_text(c, vn, sub);
            bad |= !val;
        } else {
            unsigned dk = af__config_edit_distance(name, strlen(name), "key", 3);
            unsigned dv = af__config_edit_distance(name, strlen(name), "value", 5);
            if (dk <= 1 || dv <= 2)
                diag_at(c, AF_DIAG_WARNING, kn, sub, "unknown key (ignored); did you mean \"%s\"?",
                        dk <= 1 ? "key" : "value");
            else
                diag_at(c, AF_DIAG_WARNING, kn, sub, "unknown key (ignored)");
        }
    }
    if (bad)
        return;
    if (!key || !val) {
        diag_at(c, AF_DIAG_ERROR, item, shown, "missing \"%s\"", !key ? "key" : "value");
        return;
    }
    if (!*key) {
        diag_at(c, AF_DIAG_ERROR, key_at, shown, "attribute keys must not be empty");
        return;
    }
    kv_add(c, list, n, key_at, shown, key, val);
}

static void set_kv_list(load_ctx *c, const af__config_key *k, const yaml_node_t *v, bool via_alias,
                        const char *shown_key)
{
    char shown[64];
    af_config_kv *list = NULL;
    size_t n = 0;
    if (scalar_is_null(v)) {
        /* an explicit empty list */
    } else if (v->type == YAML_MAPPING_NODE) {
        size_t count = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (too_big(c, v, shown_key, count, MAX_LIST_ITEMS))
            return;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
             p < v->data.mapping.pairs.top && c->rc == 0; p++) {
            yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
            const char *name = mapping_key(c, kn, shown_key);
            const char *val = name ? item_text(c, vn, shown_key) : NULL;
            if (!val)
                continue;
            if (!*name) {
                diag_at(c, AF_DIAG_ERROR, kn, shown_key, "attribute keys must not be empty");
                continue;
            }
            kv_add(c, &list, &n, kn, shown_key, name, val);
        }
    } else if (v->type == YAML_SEQUENCE_NODE) {
        size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (too_big(c, v, shown_key, count, MAX_LIST_ITEMS))
            return;
        size_t idx = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top && c->rc == 0; it++, idx++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            snprintf(shown, sizeof shown, "%s[%zu]", shown_key, idx);
            kv_list_item(c, item, shown, &list, &n);
        }
    } else {
        char why[128];
        af__config_expected(k, why, sizeof why);
        diag_at(c, AF_DIAG_ERROR, v, shown_key, "%s, got %s", why, node_kind(v));
        return;
    }
    if (c->rc != 0 || !may_set(c, k, via_alias)) {
        if (c->rc == 0)
            diag_at(c, AF_DIAG_INFO, v, shown_key, "ignored because %s is also set", k->info.key);
        af__config_kv_free(list, n);
        return;
    }
    size_t *cur_n;
    af_config_kv **cur = af__config_kv_slot(c->cfg, k, &cur_n);
    af__config_kv_free(*cur, *cur_n);
    *cur = list;
    *cur_n = n;
}

/* ---------------------------------------------------------------------------------------- */
/* The old flat keys, read as aliases (docs/upstream-differences.md).                       */

static const af__config_key *row(const char *key)
{
    return af__config_key_lookup(key, strlen(key));
}

static void set_bool_alias(load_ctx *c, const char *key, bool value)
{
    char why[64];
    const af__config_key *k = row(key);
    if (may_set(c, k, true))
        af__config_set_scalar(c->cfg, k, value ? "true" : "false", why, sizeof why);
}

static void alias_exporter_type(load_ctx *c, const yaml_node_t *v)
{
    static const char *const types[] = {"jaeger", "otlp", "stdout", "none"};
    const char *text = v->type == YAML_SCALAR_NODE ? scalar_text(c, v, "exporter_type") : NULL;
    int which = -1;
    for (int i = 0; text && i < 4; i++)
        if (strcasecmp(text, types[i]) == 0)
            which = i;
    if (which < 0) {
        char got[96] = "a non-string";
        if (text)
            af__config_quote(text, v->data.scalar.length, got, sizeof got);
        else if (v->type != YAML_SCALAR_NODE)
            snprintf(got, sizeof got, "%s", node_kind(v));
        diag_at(c, AF_DIAG_ERROR, v, "exporter_type",
                "expected one of \"jaeger\", \"otlp\", \"stdout\", \"none\", got %s", got);
        return;
    }
    /* exporter_type names exactly one exporter; "none" switches tracing off. */
    set_bool_alias(c, "tracing.enabled", which != 3);
    set_bool_alias(c, "tracing.exporters.jaeger.enabled", which == 0);
    set_bool_alias(c, "tracing.exporters.otlp_http.enabled", which == 1);
    set_bool_alias(c, "tracing.exporters.stdout.enabled", which == 2);
}

/* The old enabled_spans categories mapped to the document's component toggles. */
static const struct {
    const char *category;
    const char *toggles[3];
} span_categories[] = {
    {"gpu_scheduling",
     {"components.gpu_scheduler.trace_workload_submission",
      "components.gpu_scheduler.trace_scheduling_decisions",
      "components.gpu_scheduler.trace_gpu_registration"}},
    {"model_serving",
     {"components.model_serving.trace_inference_requests",
      "components.model_serving.trace_model_loading", NULL}},
    {"metrics_collection",
     {"components.metrics_collector.trace_collection_cycles",
      "components.metrics_collector.trace_individual_gpus", NULL}},
    {"cost_tracking", {"components.observability.trace_cost_calculations", NULL, NULL}},
    {"api_requests", {"components.web_dashboard.trace_api_requests", NULL, NULL}},
    {"websocket_events", {"components.web_dashboard.trace_websocket_events", NULL, NULL}},
};

static void alias_enabled_spans(load_ctx *c, const yaml_node_t *v)
{
    if (scalar_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        diag_at(c, AF_DIAG_ERROR, v, "enabled_spans",
                "expected a mapping of span categories to true or false, got %s", node_kind(v));
        return;
    }
    size_t count = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (too_big(c, v, "enabled_spans", count, MAX_MAPPING_KEYS))
        return;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *name = mapping_key(c, kn, "enabled_spans");
        if (!name)
            continue;
        char full[128];
        snprintf(full, sizeof full, "enabled_spans.%s", name);
        if (duplicate_key(c, v, p, full, false))
            continue;
        size_t cat = 0;
        while (cat < sizeof span_categories / sizeof span_categories[0] &&
               strcmp(span_categories[cat].category, name) != 0)
            cat++;
        if (cat == sizeof span_categories / sizeof span_categories[0]) {
            diag_at(c, AF_DIAG_WARNING, kn, full, "unknown span category (ignored)");
            continue;
        }
        for (size_t t = 0; t < 3 && span_categories[cat].toggles[t]; t++)
            set_scalar_node(c, row(span_categories[cat].toggles[t]), vn, full, true);
    }
}

/* Returns true when `name` at the top level is an alias (and handles it). */
static bool handle_alias(load_ctx *c, const char *name, const yaml_node_t *kn, const yaml_node_t *v)
{
    static const struct {
        const char *alias, *canonical;
    } simple[] = {
        {"jaeger_endpoint", "tracing.exporters.jaeger.endpoint"},
        {"otlp_endpoint", "tracing.exporters.otlp_http.endpoint"},
        {"sample_rate", "tracing.sampling_ratio"},
        {"attributes", "resource_attributes"},
        {"exporter_type", "tracing.exporters.*.enabled"},
        {"enabled_spans", "components.*"},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (strcmp(name, simple[i].alias) != 0)
            continue;
        diag_at(c, AF_DIAG_INFO, kn, name, "key of the original Go project, read as %s",
                simple[i].canonical);
        if (i < 3)
            set_scalar_node(c, row(simple[i].canonical), v, name, true);
        else if (i == 3)
            set_kv_list(c, row(simple[i].canonical), v, true, name);
        else if (i == 4)
            alias_exporter_type(c, v);
        else
            alias_enabled_spans(c, v);
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------- */

static void report_at(void *ctx, af_diag_severity sev, const yaml_node_t *n, const char *key,
                      const char *msg)
{
    diag_at(ctx, sev, n, key, "%s", msg);
}

/* serving.models: read whole, then replace the current list (nothing changes on errors). */
static void set_models(load_ctx *c, const af__config_key *k, const yaml_node_t *v)
{
    af_config_model *models = NULL;
    size_t n = 0;
    int rc = af__config_models_read(c->doc, v, (size_t)k->info.max, &models, &n, report_at, c);
    if (rc == -ENOMEM) {
        c->rc = -ENOMEM;
        return;
    }
    if (rc != 0)
        return;
    af__config_models_free(c->cfg->serving.models, c->cfg->serving.n_models);
    c->cfg->serving.models = models;
    c->cfg->serving.n_models = n;
}

static bool is_section(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *k = af__config_keys[i].info.key;
        if (strncmp(k, path, len) == 0 && k[len] == '.')
            return true;
    }
    return false;
}

static void walk_mapping(load_ctx *c, const yaml_node_t *map, const char *prefix)
{
    size_t count = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (too_big(c, map, prefix[0] ? prefix : NULL, count, MAX_MAPPING_KEYS))
        return;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top && c->rc == 0; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *name = mapping_key(c, kn, prefix);
        if (!name)
            continue;
        char full[256];
        int fl = snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (fl < 0 || (size_t)fl >= sizeof full) {
            diag_at(c, AF_DIAG_WARNING, kn, NULL, "unknown key (ignored): key too long");
            continue;
        }
        if (duplicate_key(c, map, p, full, false))
            continue;
        const af__config_key *k = af__config_key_lookup(full, (size_t)fl);
        if (k) {
            if (k->info.type == AF_CFG_MAP)
                set_map(c, k, vn);
            else if (k->info.type == AF_CFG_KV_LIST)
                set_kv_list(c, k, vn, false, k->info.key);
            else if (k->info.type == AF_CFG_LIST)
                set_list(c, k, vn);
            else if (k->info.type == AF_CFG_MODELS)
                set_models(c, k, vn);
            else
                set_scalar_node(c, k, vn, k->info.key, false);
        } else if (is_section(full)) {
            if (vn->type == YAML_MAPPING_NODE)
                walk_mapping(c, vn, full);
            else if (!scalar_is_null(vn)) /* "jaeger:" with nothing under it is fine */
                diag_at(c, AF_DIAG_ERROR, vn, full, "expected a mapping, got %s", node_kind(vn));
        } else if (prefix[0] || !handle_alias(c, name, kn, vn)) {
            unknown_key(c, kn, full);
        }
    }
}

static void syntax_error(load_ctx *c, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed document";
    uint32_t line = (uint32_t)p->problem_mark.line + 1;
    uint32_t col = (uint32_t)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad encoding) carry a byte offset rather than a mark. */
        line = 0;
        col = 0;
    }
    char extra[160] = "";
    if (p->context)
        snprintf(extra, sizeof extra, " (%s at line %lu, column %lu)", p->context,
                 (unsigned long)p->context_mark.line + 1,
                 (unsigned long)p->context_mark.column + 1);
    c->errors++;
    int rc;
    if (line)
        rc = af__diag_add(c->diag, AF_DIAG_ERROR, c->src, line, col, NULL,
                          "YAML syntax error: %s%s", problem, extra);
    else
        rc = af__diag_add(c->diag, AF_DIAG_ERROR, c->src, 0, 0, NULL,
                          "YAML syntax error: %s at byte %zu", problem, p->problem_offset);
    if (rc != 0)
        c->rc = -ENOMEM;
}

int af_tracing_config_load_string(const char *name, const char *yaml, size_t len,
                                  af_tracing_config *cfg, af_config_diag *diag)
{
    if (!cfg || (!yaml && len))
        return -EINVAL;
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.src = name ? name : "<string>";
    c.cfg = cfg;
    c.diag = diag;

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (parser.error == YAML_MEMORY_ERROR) {
            yaml_parser_delete(&parser);
            return -ENOMEM;
        }
        syntax_error(&c, &parser);
        yaml_parser_delete(&parser);
        return c.rc ? c.rc : AF_EPARSE;
    }
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        if (root->type == YAML_MAPPING_NODE)
            walk_mapping(&c, root, "");
        else if (!scalar_is_null(root))
            diag_at(&c, AF_DIAG_ERROR, root, NULL, "expected a mapping at the top level, got %s",
                    node_kind(root));

        /* A stream of several documents is almost always a mistake (a stray "---"). */
        yaml_document_t next;
        if (c.rc == 0 && yaml_parser_load(&parser, &next)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2)
                diag_at(&c, AF_DIAG_ERROR, r2, NULL,
                        "only one YAML document is allowed; this one is not read");
            yaml_document_delete(&next);
        } else if (c.rc == 0) {
            if (parser.error == YAML_MEMORY_ERROR)
                c.rc = -ENOMEM;
            else
                syntax_error(&c, &parser);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (c.rc != 0)
        return c.rc;

    int v = af__config_validate(cfg, diag, c.src);
    if (v < 0)
        return v;
    c.errors += (size_t)v;
    return c.errors ? AF_EPARSE : 0;
}

int af_tracing_config_load(const char *path, af_tracing_config *cfg, af_config_diag *diag)
{
    if (!path || !cfg)
        return -EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        af__diag_add(diag, AF_DIAG_ERROR, path, 0, 0, NULL, "cannot open: %s", strerror(err));
        return -err;
    }
    /* Config files are small; a cap keeps a mistaken path (a log, a device) from eating
     * memory. */
    enum { MAX_FILE = 4 << 20 };
    char *data = malloc(MAX_FILE + 1);
    if (!data) {
        fclose(f);
        return -ENOMEM;
    }
    size_t len = fread(data, 1, MAX_FILE + 1, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err || len > MAX_FILE) {
        free(data);
        af__diag_add(diag, AF_DIAG_ERROR, path, 0, 0, NULL, "%s",
                     read_err ? "read error" : "larger than 4 MiB; not a configuration file");
        return read_err ? -EIO : -EFBIG;
    }
    int rc = af_tracing_config_load_string(path, data, len, cfg, diag);
    free(data);
    return rc;
}
