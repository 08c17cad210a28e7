/*
 * Typed values of the key table's rows (keys.c): reading and writing enums, the reason text
 * for a wrong value, parsing and setting scalars, maps / kv-lists, lists and header checks.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"
#include "util/str.h"

/* Enums are stored in their own enum types; both used here are int-sized with small
 * non-negative values, so they are read and written through memcpy of an int. */
_Static_assert(sizeof(af_otlp_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(af_config_compression) == sizeof(int), "enum size");
_Static_assert(sizeof(af_config_gpu_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(af_config_strategy) == sizeof(int), "enum size");
_Static_assert(sizeof(af_config_log_format) == sizeof(int), "enum size");

int af__config_enum_get(const af_tracing_config *cfg, const af__config_key *k)
{
    int v;
    memcpy(&v, af__config_cfield(cfg, k), sizeof v);
    return v;
}

void af__config_expected(const af__config_key *k, char *out, size_t out_len)
{
    char lo[32], hi[32];
    if (k->expect && k->info.type != AF_CFG_LIST) {
        snprintf(out, out_len, "%s", k->expect);
        return;
    }
    switch (k->info.type) {
    case AF_CFG_STRING:
        if (k->flags & AF__KEY_URL)
            snprintf(out, out_len, "expected an http:// or https:// URL");
        else if (k->maxlen)
            snprintf(out, out_len, "expected a %sstring of at most %zu bytes",
                     k->flags & AF__KEY_OPTIONAL ? "" : "non-empty ", k->maxlen);
        else
            snprintf(out, out_len, "expected a non-empty string");
        break;
    case AF_CFG_BOOL:
        snprintf(out, out_len, "expected true or false");
        break;
    case AF_CFG_RATIO:
        snprintf(out, out_len, "expected a number between 0 and 1");
        break;
    case AF_CFG_UINT:
    case AF_CFG_INT:
        snprintf(out, out_len, "expected an integer between %lld and %lld", (long long)k->info.min,
                 (long long)k->info.max);
        break;
    case AF_CFG_BYTES:
        snprintf(out, out_len, "expected a byte count between %lld and %lld",
                 (long long)k->info.min, (long long)k->info.max);
        break;
    case AF_CFG_LIST:
        snprintf(out, out_len, "expected a list of at most %lld strings", (long long)k->info.max);
        break;
    case AF_CFG_MODELS:
        snprintf(out, out_len, "expected a list of model mappings");
        break;
    case AF_CFG_DURATION:
        af_config_format_duration((uint32_t)k->info.min, lo, sizeof lo);
        af_config_format_duration((uint32_t)k->info.max, hi, sizeof hi);
        snprintf(out, out_len,
                 "expected a duration between %s and %s such as \"30s\" or \"500ms\" "
                 "(a plain number means milliseconds)",
                 lo, hi);
        break;
    case AF_CFG_MAP:
        snprintf(out, out_len, "expected a mapping of names to strings");
        break;
    case AF_CFG_KV_LIST:
        snprintf(out, out_len, "expected a list of {key, value} mappings");
        break;
    case AF_CFG_ENUM: {
        size_t used = (size_t)snprintf(out, out_len, "expected one of");
        for (size_t i = 0; k->info.enum_values[i] && used < out_len; i++)
            used += (size_t)snprintf(out + used, out_len - used, "%s \"%s\"", i ? "," : "",
                                     k->info.enum_values[i]);
        break;
    }
    }
}

static bool is_url(const char *s)
{
    const char *rest = NULL;
    if (strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    /* A host is required; spaces and control characters never belong in a URL. */
    if (!rest || !*rest || *rest == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

static int set_string(char **slot, const char *text, bool optional, bool url, size_t maxlen,
                      bool *bad)
{
    if (maxlen && strlen(text) > maxlen) {
        *bad = true;
        return AF_EPARSE;
    }
    if (!*text) {
        if (!optional) {
            *bad = true;
            return AF_EPARSE;
        }
        free(*slot);
        *slot = NULL;
        return 0;
    }
    if (url && !is_url(text)) {
        *bad = true;
        return AF_EPARSE;
    }
    char *copy = af__strdup(text);
    if (!copy)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

int af__config_set_scalar(af_tracing_config *cfg, const af__config_key *k, const char *text,
                          char *why, size_t why_len)
{
    void *field = af__config_field(cfg, k);
    bool bad = false;
    int rc = 0;
    switch (k->info.type) {
    case AF_CFG_STRING:
        rc = set_string((char **)field, text, k->flags & AF__KEY_OPTIONAL, k->flags & AF__KEY_URL,
                        k->maxlen, &bad);
        break;
    case AF_CFG_BOOL:
        bad = !parse_bool(text, (bool *)field);
        break;
    case AF_CFG_RATIO: {
        char *end = NULL;
        errno = 0;
        double d = strtod(text, &end);
        if (!*text || errno || *end || !isfinite(d) || d < 0.0 || d > 1.0)
            bad = true;
        else
            *(double *)field = d;
        break;
    }
    case AF_CFG_UINT:
    case AF_CFG_BYTES: {
        /* The table's bounds are non-negative for these types, so the casts are exact. */
        uint64_t v = 0;
        if (!parse_u64(text, &v) || v < (uint64_t)k->info.min || v > (uint64_t)k->info.max)
            bad = true;
        else if (k->info.type == AF_CFG_UINT)
            *(uint32_t *)field = (uint32_t)v;
        else
            *(uint64_t *)field = v;
        break;
    }
    case AF_CFG_INT: {
        const char *digits = *text == '-' ? text + 1 : text;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (*digits < '0' || *digits > '9' || errno || *end || v < k->info.min || v > k->info.max)
            bad = true;
        else
            *(int *)field = (int)v;
        break;
    }
    case AF_CFG_DURATION: {
        uint32_t ms = 0;
        if (af_config_parse_duration(text, &ms) != 0 || ms < k->info.min || ms > k->info.max)
            bad = true;
        else
            *(uint32_t *)field = ms;
        break;
    }
    case AF_CFG_ENUM: {
        bad = true;
        for (int i = 0; k->info.enum_values[i]; i++) {
            if (strcasecmp(text, k->info.enum_values[i]) == 0) {
                memcpy(field, &i, sizeof i);
                bad = false;
                break;
            }
        }
        break;
    }
    case AF_CFG_MAP:
    case AF_CFG_KV_LIST:
    case AF_CFG_LIST:
    case AF_CFG_MODELS:
        bad = true; /* not scalars: the callers handle them */
        break;
    }
    if (bad) {
        af__config_expected(k, why, why_len);
        return AF_EPARSE;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */

af_config_kv **af__config_kv_slot(af_tracing_config *cfg, const af__config_key *k, size_t **n)
{
    *n = (size_t *)((char *)cfg + k->count_offset);
    return (af_config_kv **)af__config_field(cfg, k);
}

const af_config_kv *af__config_kv_get(const af_tracing_config *cfg, const af__config_key *k,
                                      size_t *n)
{
    *n = *(const size_t *)((const char *)cfg + k->count_offset);
    return *(af_config_kv *const *)af__config_cfield(cfg, k);
}

int af__config_kv_put(af_config_kv **arr, size_t *n, const char *key, const char *value,
                      bool replace, bool fold_case)
{
    char *v = af__strdup(value);
    if (!v)
        return -ENOMEM;
    if (replace) {
        for (size_t i = 0; i < *n; i++) {
            bool same =
                fold_case ? strcasecmp((*arr)[i].key, key) == 0 : strcmp((*arr)[i].key, key) == 0;
            if (same) {
                free((*arr)[i].value);
                (*arr)[i].value = v;
                return 0;
            }
        }
    }
    char *k = af__strdup(key);
    af_config_kv *grown = k ? realloc(*arr, (*n + 1) * sizeof **arr) : NULL;
    if (!grown) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    grown[*n].key = k;
    grown[*n].value = v;
    *arr = grown;
    (*n)++;
    return 0;
}

void af__config_kv_free(af_config_kv *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i].key);
        free(arr[i].value);
    }
    free(arr);
}

bool af__config_list_item_ok(const af__config_key *k, const char *text, char *why, size_t why_len)
{
    if (*text && (!k->maxlen || strlen(text) <= k->maxlen))
        return true;
    if (k->expect)
        snprintf(why, why_len, "%s", k->expect);
    else
        snprintf(why, why_len, "expected a non-empty string of at most %zu bytes", k->maxlen);
    return false;
}

void af__config_list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

char ***af__config_list_slot(af_tracing_config *cfg, const af__config_key *k, size_t **n)
{
    *n = (size_t *)((char *)cfg + k->count_offset);
    return (char ***)af__config_field(cfg, k);
}

char *const *af__config_list_get(const af_tracing_config *cfg, const af__config_key *k, size_t *n)
{
    *n = *(const size_t *)((const char *)cfg + k->count_offset);
    return *(char **const *)af__config_cfield(cfg, k);
}

void af__config_list_replace(af_tracing_config *cfg, const af__config_key *k, char **items,
                             size_t n)
{
    size_t *cur_n;
    char ***cur = af__config_list_slot(cfg, k, &cur_n);
    af__config_list_free(*cur, *cur_n);
    *cur = items;
    *cur_n = n;
}

bool af__config_header_name_ok(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z') || (*p && strchr(tchar, *p));
        if (!ok)
            return false;
    }
    return true;
}

bool af__config_header_value_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}
