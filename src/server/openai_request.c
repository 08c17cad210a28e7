/*
 * The OpenAI front door's requests (openai_request.h): parsing and checking the body of the
 * POST routes into an af_chat_request, and the OpenAI-shaped error responses.
 */
#include "server/openai_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/limits.h"
#include "server/openai_json.h"

void af__oai_resp_error(af__resp *rs, int status, const char *code, const char *param,
                        const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    af__resp_reset_body(rs);
    rs->status = status;
    rs->content_type = "application/json";
    af__oai_error_json(&rs->body, status, code, param, msg);
}

void af__oai_body_free(af__oai_body *b)
{
    free(b->msgs);
    json_decref(b->doc);
    b->msgs = NULL;
    b->doc = NULL;
}

/* Optional typed fields: false (and the 400 naming the field) when present with the wrong
 * type or out of range. */
static bool opt_string(json_t *o, const char *k, af__field f, const char **out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        af__oai_resp_error(rs, 400, "invalid_type", k, "'%s' must be a string", k);
        return false;
    }
    char err[160];
    if (af__field_check(f, k, json_string_value(v), json_string_length(v), err, sizeof(err))) {
        af__oai_resp_error(rs, 400, "invalid_value", k, "%s", err);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool opt_number(json_t *o, const char *k, double lo, double hi, bool integer, double *out,
                       af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(d) || d < lo || d > hi || (integer && d != floor(d))) {
        af__oai_resp_error(rs, 400, json_is_number(v) ? "invalid_value" : "invalid_type", k,
                           "'%s' must be %s between %g and %g", k,
                           integer ? "an integer" : "a number", lo, hi);
        return false;
    }
    *out = d;
    return true;
}

static bool opt_bool(json_t *o, const char *k, bool *out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        af__oai_resp_error(rs, 400, "invalid_type", k, "'%s' must be a boolean", k);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* content given as parts ([{"type":"text","text":"..."}], as newer clients send it): the
 * texts joined by newlines replace the array in the document, which owns the joined string.
 * Other part types (images, audio, files) get a 400: the gateway relays text only. */
static bool join_text_parts(json_t *m, json_t *parts, const char *param, af__resp *rs)
{
    size_t n = json_array_size(parts), len = 0;
    for (size_t j = 0; j < n; j++) {
        json_t *part = json_array_get(parts, j);
        json_t *type = json_is_object(part) ? json_object_get(part, "type") : NULL;
        json_t *text = json_is_object(part) ? json_object_get(part, "text") : NULL;
        char where[80];
        snprintf(where, sizeof(where), "%s[%zu]", param, j);
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0) {
            af__oai_resp_error(
                rs, 400, "invalid_value", where,
                "'%s' must be a text part {\"type\":\"text\",\"text\":...}; this gateway "
                "relays text only",
                where);
            return false;
        }
        if (!json_is_string(text)) {
            af__oai_resp_error(rs, 400, "invalid_type", where, "'%s.text' must be a string", where);
            return false;
        }
        len += json_string_length(text) + (j > 0);
    }
    char *joined = malloc(len + 1);
    if (!joined) {
        af__oai_resp_error(rs, 500, "internal_error", NULL, "out of memory");
        return false;
    }
    size_t at = 0;
    for (size_t j = 0; j < n; j++) {
        json_t *text = json_object_get(json_array_get(parts, j), "text");
        if (j > 0)
            joined[at++] = '\n';
        memcpy(joined + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    json_t *str = json_stringn_nocheck(joined, at);
    free(joined);
    if (!str || json_object_set_new(m, "content", str) != 0) {
        af__oai_resp_error(rs, 500, "internal_error", NULL, "out of memory");
        return false;
    }
    return true;
}

/* messages: 1..AF__OAI_MAX_MESSAGES objects {role, content: string, text parts or null};
 * *total gets the content bytes. */
static bool parse_messages(json_t *o, af__oai_body *b, size_t *total, af__resp *rs)
{
    json_t *arr = json_object_get(o, "messages");
    if (!arr || !json_is_array(arr)) {
        af__oai_resp_error(rs, 400, arr ? "invalid_type" : "missing_required_parameter", "messages",
                           "'messages' must be an array of message objects");
        return false;
    }
    size_t n = json_array_size(arr);
    if (n == 0 || n > AF__OAI_MAX_MESSAGES) {
        af__oai_resp_error(rs, 400, n ? "array_above_max_length" : "empty_array", "messages",
                           "'messages' holds %zu messages; 1 to %d are accepted", n,
                           AF__OAI_MAX_MESSAGES);
        return false;
    }
    b->msgs = calloc(n, sizeof(*b->msgs));
    if (!b->msgs) {
        af__oai_resp_error(rs, 500, "internal_error", NULL, "out of memory");
        return false;
    }
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu]", i);
        if (!json_is_object(m)) {
            af__oai_resp_error(rs, 400, "invalid_type", param, "'%s' must be an object", param);
            return false;
        }
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        char err[160];
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (!json_is_string(role)) {
            af__oai_resp_error(rs, 400, role ? "invalid_type" : "missing_required_parameter", param,
                               "'%s' must be a string", param);
            return false;
        }
        if (af__field_check(AF__F_OAI_ROLE, param, json_string_value(role),
                            json_string_length(role), err, sizeof(err)) != 0) {
            af__oai_resp_error(rs, 400, "invalid_value", param, "%s", err);
            return false;
        }
        snprintf(param, sizeof(param), "messages[%zu].content", i);
        if (json_is_array(content)) {
            if (!join_text_parts(m, content, param, rs))
                return false;
            content = json_object_get(m, "content");
        } else if (content && !json_is_null(content) && !json_is_string(content)) {
            af__oai_resp_error(rs, 400, "invalid_type", param,
                               "'%s' must be a string, an array of text parts or null", param);
            return false;
        }
        b->msgs[i].role = json_string_value(role);
        b->msgs[i].content = json_is_string(content) ? json_string_value(content) : NULL;
        b->msgs[i].content_len = json_is_string(content) ? json_string_length(content) : 0;
        *total += b->msgs[i].content_len;
    }
    b->req.messages = b->msgs;
    b->req.n_messages = n;
    return true;
}

/* prompt: a string, or an array holding one string. */
static bool parse_prompt(json_t *o, af__oai_body *b, size_t *total, af__resp *rs)
{
    json_t *p = json_object_get(o, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1)
        p = json_array_get(p, 0);
    if (!json_is_string(p)) {
        af__oai_resp_error(rs, 400, p ? "invalid_type" : "missing_required_parameter", "prompt",
                           "'prompt' must be a string (or an array of one string)");
        return false;
    }
    b->req.prompt = json_string_value(p);
    b->req.prompt_len = json_string_length(p);
    *total = b->req.prompt_len;
    return true;
}

bool af__oai_parse_body(af__req *rq, af__resp *rs, bool chat, af__oai_body *b)
{
    memset(b, 0, sizeof(*b));
    json_error_t e;
    b->doc = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!b->doc || !json_is_object(b->doc)) {
        if (b->doc)
            af__oai_resp_error(rs, 400, "invalid_json", NULL, "the body must be a JSON object");
        else
            af__oai_resp_error(
                rs, 400, "invalid_json", NULL,
                "We could not parse the JSON body of your request: %s (line %d, column "
                "%d)",
                e.text, e.line, e.column);
        return false;
    }
    json_t *o = b->doc;
    af_chat_request *r = &b->req;
    r->operation = chat ? AF_CHAT_OP_CHAT : AF_CHAT_OP_TEXT_COMPLETION;
    r->temperature = NAN;
    double max_tokens = 0, mct = 0, temperature = NAN, n = 1;
    size_t total = 0;
    json_t *so = json_object_get(o, "stream_options");
    if (!opt_string(o, "model", AF__F_OAI_MODEL, &r->model, rs) ||
        !opt_string(o, "user", AF__F_OAI_USER, &r->user, rs) ||
        !opt_number(o, "max_tokens", 1, 1e6, true, &max_tokens, rs) ||
        !opt_number(o, "max_completion_tokens", 1, 1e6, true, &mct, rs) ||
        !opt_number(o, "temperature", 0, 2, false, &temperature, rs) ||
        !opt_number(o, "n", 1, 1, true, &n, rs) || !opt_bool(o, "stream", &r->stream, rs))
        return false;
    if (so && !json_is_null(so) && !json_is_object(so)) {
        af__oai_resp_error(rs, 400, "invalid_type", "stream_options",
                           "'stream_options' must be an object");
        return false;
    }
    if (so && json_is_object(so) && !opt_bool(so, "include_usage", &r->include_usage, rs))
        return false;
    if (!r->model || !*r->model) {
        af__oai_resp_error(rs, 400, "missing_required_parameter", "model", "'model' is required");
        return false;
    }
    if (!(chat ? parse_messages(o, b, &total, rs) : parse_prompt(o, b, &total, rs)))
        return false;
    uint32_t limit = rq->srv->o.max_input_tokens;
    if (af_serving_input_tokens(total) > (int64_t)limit) {
        af__oai_resp_error(rs, 400, "context_length_exceeded", chat ? "messages" : "prompt",
                           "'%s' is %lld tokens (%zu bytes at 4 bytes a token); the limit is "
                           "server.max_input_tokens = %u",
                           chat ? "messages" : "prompt", (long long)af_serving_input_tokens(total),
                           total, limit);
        return false;
    }
    r->max_tokens = (uint32_t)(mct > 0 ? mct : max_tokens);
    r->temperature = temperature;
    r->include_usage = r->include_usage && r->stream;
    r->timeout_ms = rq->srv->o.inference_timeout_ms;
    return true;
}
