/*
 * The bounds on request body fields (limits.h). docs/security.md ("## Limits") prints this
 * table; change both together.
 */
#include "server/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "agentaflow/gpu.h"
#include "agentaflow/serving.h"

/* Ids and names as the scheduler stores them (its buffers include the NUL). */
#define ID_MAX (AF_GPU_ID_MAX - 1)
#define NAME_MAX_BYTES (AF_GPU_NAME_MAX - 1)
/* Label values: long enough for "org/model-name:revision", short enough that 1000 of them
 * (server.max_label_values) on a handful of families keep /metrics in the hundreds of KiB. */
#define LABEL_MAX 128
/* ISO 4217 codes are 3 letters; the cost summary keeps 7 bytes. */
#define CURRENCY_MAX 7
/* OpenAI's roles are "system", "developer", "user", "assistant", "tool", "function". */
#define ROLE_MAX 32

const af__field_limit af__field_limits[AF__F_COUNT] = {
    [AF__F_COST_ID] = {"POST /api/v1/costs", "id", ID_MAX, AF__CS_TEXT},
    [AF__F_COST_OPERATION] = {"POST /api/v1/costs", "operation", LABEL_MAX, AF__CS_LABEL},
    [AF__F_COST_MODEL_ID] = {"POST /api/v1/costs", "model_id", LABEL_MAX, AF__CS_LABEL},
    [AF__F_COST_CURRENCY] = {"POST /api/v1/costs", "currency", CURRENCY_MAX, AF__CS_LABEL},
    [AF__F_GPU_ID] = {"POST /api/v1/gpus", "id", ID_MAX, AF__CS_LABEL},
    [AF__F_GPU_NAME] = {"POST /api/v1/gpus", "name", NAME_MAX_BYTES, AF__CS_TEXT},
    [AF__F_WORKLOAD_ID] = {"POST /api/v1/workloads", "id", ID_MAX, AF__CS_TEXT},
    [AF__F_WORKLOAD_NAME] = {"POST /api/v1/workloads", "name", NAME_MAX_BYTES, AF__CS_TEXT},
    [AF__F_INFER_MODEL_ID] = {"POST /api/v1/inference", "model_id", LABEL_MAX, AF__CS_LABEL},
    [AF__F_INFER_REQUEST_ID] = {"POST /api/v1/inference", "request_id", ID_MAX, AF__CS_TEXT},
    [AF__F_OAI_MODEL] = {"POST /v1/chat/completions", "model", LABEL_MAX, AF__CS_LABEL},
    [AF__F_OAI_USER] = {"POST /v1/chat/completions", "user", ID_MAX, AF__CS_TEXT},
    [AF__F_OAI_ROLE] = {"POST /v1/chat/completions", "role", ROLE_MAX, AF__CS_LABEL},
};

static bool label_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '/' || c == '-';
}

int af__field_check(af__field f, const char *key, const char *v, size_t len, char *err,
                    size_t err_len)
{
    const af__field_limit *l = &af__field_limits[f];
    const char *name = key ? key : l->name;
    if (len > l->max_bytes) {
        snprintf(err, err_len, "\"%s\" is %zu bytes; the limit is %" PRIu32 " bytes", name, len,
                 l->max_bytes);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        bool ok = l->charset == AF__CS_LABEL ? label_byte(c) : c >= 0x20 && c != 0x7f;
        if (!ok) {
            snprintf(err, err_len,
                     l->charset == AF__CS_LABEL
                         ? "\"%s\" may contain only A-Z, a-z, 0-9 and _ . : / - (byte %zu is not)"
                         : "\"%s\" may not contain control characters (byte %zu is one)",
                     name, i);
            return -EINVAL;
        }
    }
    return 0;
}

int af__input_check(size_t len, uint32_t max_tokens, char *err, size_t err_len)
{
    int64_t tokens = af_serving_input_tokens(len);
    if (tokens <= (int64_t)max_tokens)
        return 0;
    snprintf(err, err_len,
             "\"input\" is %" PRId64 " tokens (%zu bytes at 4 bytes a token); the limit is "
             "max_input_tokens = %" PRIu32,
             tokens, len, max_tokens);
    return -EINVAL;
}
