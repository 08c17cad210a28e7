/*
 * config/config_int.h - what the files of src/config share: the key table rows (public info
 * plus where each value lives in af_tracing_config), typed setters and diagnostics helpers.
 */
#ifndef AF_CONFIG_CONFIG_INT_H
#define AF_CONFIG_CONFIG_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "agentaflow/config.h"

/* Row flags. */
enum {
    AF__KEY_OPTIONAL = 1u << 0, /* string: null or "" means unset (stored as NULL) */
    AF__KEY_URL = 1u << 1,      /* string: must be an http:// or https:// URL */
    /* info.env is one variable read generically by af_tracing_config_apply_env (the value is
     * parsed like the YAML one); rows without it document variables config_env.c reads
     * with their own rules (the OTEL_* family). */
    AF__KEY_ENV = 1u << 2,
};

typedef struct af__config_key {
    af_config_key_info info;
    size_t offset;       /* of the value in af_tracing_config */
    size_t count_offset; /* map / kv-list / list: of the size_t element count */
    unsigned flags;
    size_t maxlen;      /* string, list entry: longest value in bytes; 0 = no limit */
    const char *expect; /* the reason for a rejected value (list: entry) instead of the
                         * generic one, where the key has a clearer way to say it */
} af__config_key;

/* Upper bound on the table's length (checked at compile time in keys.c), for per-load
 * bookkeeping arrays. */
#define AF__CONFIG_MAX_KEYS 128

extern const af__config_key af__config_keys[];
extern const size_t af__config_nkeys;

/* The row of a dotted key (counted string), or NULL. */
const af__config_key *af__config_key_lookup(const char *key, size_t len);

/*
 * Sets the scalar value of row k (string, bool, ratio, uint, duration, enum) from text.
 * Returns 0, AF_EPARSE with the reason ("expected a number between 0 and 1") in why, or
 * -ENOMEM. The value is unchanged on failure.
 */
int af__config_set_scalar(af_tracing_config *cfg, const af__config_key *k, const char *text,
                          char *why, size_t why_len);
/* The reason text for a wrong value of row k, e.g. "expected true or false". */
void af__config_expected(const af__config_key *k, char *out, size_t out_len);

/* List rows: whether one entry is acceptable (non-empty, within maxlen), and replacing the
 * whole list with `items` (n entries, malloc'd strings in a malloc'd array; ownership is
 * taken, also of a NULL array when n is 0). */
bool af__config_list_item_ok(const af__config_key *k, const char *text, char *why, size_t why_len);
char *const *af__config_list_get(const af_tracing_config *cfg, const af__config_key *k, size_t *n);
void af__config_list_replace(af_tracing_config *cfg, const af__config_key *k, char **items,
                             size_t n);
void af__config_list_free(char **items, size_t n);
/* Where a list row's array and its count (*n) live in cfg. */
char ***af__config_list_slot(af_tracing_config *cfg, const af__config_key *k, size_t **n);

/* Map / kv-list storage of row k. */
af_config_kv **af__config_kv_slot(af_tracing_config *cfg, const af__config_key *k, size_t **n);
const af_config_kv *af__config_kv_get(const af_tracing_config *cfg, const af__config_key *k,
                                      size_t *n);
/* Appends (or, with replace and an equal key, overwrites) a copied pair. 0 or -ENOMEM.
 * fold_case compares keys ignoring ASCII case (HTTP header names). */
int af__config_kv_put(af_config_kv **arr, size_t *n, const char *key, const char *value,
                      bool replace, bool fold_case);
void af__config_kv_free(af_config_kv *arr, size_t n);

/* Whether any key under `prefix` (a dotted section such as "tracing.exporters.jaeger")
 * differs between a and b; for the reload, which rebuilds only what changed. */
bool af__config_section_differs(const af_tracing_config *a, const af_tracing_config *b,
                                const char *prefix);

/* Raw field access for the dumps. */
static inline void *af__config_field(af_tracing_config *cfg, const af__config_key *k)
{
    return (char *)cfg + k->offset;
}
static inline const void *af__config_cfield(const af_tracing_config *cfg, const af__config_key *k)
{
    return (const char *)cfg + k->offset;
}
int af__config_enum_get(const af_tracing_config *cfg, const af__config_key *k);

/* af_tracing_config_validate with messages prefixed by the source name (NULL = none);
 * returns the number of errors added, or -ENOMEM. */
int af__config_validate(const af_tracing_config *cfg, af_config_diag *diag, const char *src);

/* HTTP header name (RFC 9110 token) and value (no CR, LF or NUL) checks. */
bool af__config_header_name_ok(const char *s);
bool af__config_header_value_ok(const char *s);

/*
 * Adds an entry to d (d may be NULL: the entry then goes to af_log at the matching level).
 * `src` is the source name ("tracing-config.yaml") or NULL for the environment; line and
 * column are 1-based, 0 = none; key may be NULL. Returns 0 or -ENOMEM.
 */
int af__diag_add(af_config_diag *d, af_diag_severity sev, const char *src, uint32_t line,
                 uint32_t column, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;

/* Copies s into out as a quoted, escaped excerpt of at most ~60 characters, for "got ..." */
void af__config_quote(const char *s, size_t len, char *out, size_t out_len);

/* Restricted Damerau-Levenshtein (optimal string alignment) distance, capped at 255. */
unsigned af__config_edit_distance(const char *a, size_t alen, const char *b, size_t blen);

/* Copies url into out with userinfo removed and any query or fragment replaced by
 * "?[redacted]" (redact) or dropped (!redact is never used for display). */
void af__config_safe_url(const char *url, char *out, size_t out_len);

#endif
