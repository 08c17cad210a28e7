/*
 * server/limits.h - the one table of bounds on request body fields (docs/security.md,
 * "## Limits"). Every write route reads its string fields through this table, so a value
 * that is too long, or not label-safe where it becomes a metric label, is refused with a 400
 * naming the field and the limit before any span, store or metric sees it.
 *
 * Why these numbers: ids and names are copied into fixed buffers by the scheduler
 * (AF_GPU_ID_MAX, AF_GPU_NAME_MAX, both counting the terminating NUL), so the table says
 * what those buffers hold; operation and model names become Prometheus label values and
 * /api/v1/costs/summary keys, so they are short and restricted to a class that needs no
 * escaping anywhere (no quotes, backslashes, control bytes or spaces).
 */
#ifndef AF_SERVER_LIMITS_H
#define AF_SERVER_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum af__charset {
    AF__CS_TEXT,  /* any bytes but control characters (U+0000-U+001F, U+007F) */
    AF__CS_LABEL, /* [A-Za-z0-9_.:/-]: a metric label value and a summary key as-is */
} af__charset;

/* The fields; the order matches af__field_limits[]. */
typedef enum af__field {
    AF__F_COST_ID,          /* POST /api/v1/costs "id" */
    AF__F_COST_OPERATION,   /* POST /api/v1/costs "operation" (required) */
    AF__F_COST_MODEL_ID,    /* POST /api/v1/costs "model_id" */
    AF__F_COST_CURRENCY,    /* POST /api/v1/costs "currency" */
    AF__F_GPU_ID,           /* POST /api/v1/gpus "id" */
    AF__F_GPU_NAME,         /* POST /api/v1/gpus "name" */
    AF__F_WORKLOAD_ID,      /* POST /api/v1/workloads "id" */
    AF__F_WORKLOAD_NAME,    /* POST /api/v1/workloads "name" */
    AF__F_INFER_MODEL_ID,   /* POST /api/v1/inference "model_id" (or "model") */
    AF__F_INFER_REQUEST_ID, /* POST /api/v1/inference "request_id" */
    AF__F_OAI_MODEL,        /* POST /v1/chat/completions and /v1/completions "model" */
    AF__F_OAI_USER,         /* POST /v1/chat/completions and /v1/completions "user" */
    AF__F_OAI_ROLE,         /* POST /v1/chat/completions "messages[].role" */
    AF__F_COUNT
} af__field;

typedef struct af__field_limit {
    const char *route;  /* "POST /api/v1/costs" */
    const char *name;   /* the JSON key */
    uint32_t max_bytes; /* longest accepted value, in bytes */
    af__charset charset;
} af__field_limit;

extern const af__field_limit af__field_limits[AF__F_COUNT];

/* POST /v1/chat/completions: "messages" holds 1 to this many messages (their contents
 * together are bounded by server.max_input_tokens). */
#define AF__OAI_MAX_MESSAGES 256

/* 0 when v (len bytes) fits field f; else -EINVAL with a sentence naming the field and the
 * limit in err ("\"operation\" is 1048576 bytes; the limit is 128 bytes"). key is the JSON
 * key the value came from, for aliases ("model" for "model_id"); NULL = the field's name. */
int af__field_check(af__field f, const char *key, const char *v, size_t len, char *err,
                    size_t err_len);

/* 0 when an inference input of len bytes is at most max_tokens tokens as the gateway counts
 * them (af_serving_input_tokens); else -EINVAL with a sentence naming "input" and
 * max_input_tokens in err. */
int af__input_check(size_t len, uint32_t max_tokens, char *err, size_t err_len);

#endif
