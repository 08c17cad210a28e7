/*
 * The OpenAI API's JSON shapes (openai_json.h): the front door's bodies and stream events,
 * field for field as OpenAI's clients read them.
 */
#include "server/openai_json.h"

#include <string.h>

const char *af__oai_error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static void put_str_or_null(af_buf *b, const char *s)
{
    if (s && *s)
        af__buf_json_string(b, s, strlen(s));
    else
        af__buf_puts(b, "null");
}

static void put_error_object(af_buf *b, int status, const char *code, const char *param,
                             const char *msg)
{
    af__buf_puts(b, "{\"error\":{\"message\":");
    af__buf_json_string(b, msg, strlen(msg));
    af__buf_puts(b, ",\"type\":");
    const char *type = af__oai_error_type(status);
    af__buf_json_string(b, type, strlen(type));
    af__buf_puts(b, ",\"param\":");
    put_str_or_null(b, param);
    af__buf_puts(b, ",\"code\":");
    put_str_or_null(b, code);
    af__buf_puts(b, "}}");
}

void af__oai_error_json(af_buf *b, int status, const char *code, const char *param, const char *msg)
{
    put_error_object(b, status, code, param, msg);
}

static void put_head(af_buf *b, const af__oai_ids *ids, const char *object)
{
    af__buf_puts(b, "{\"id\":");
    af__buf_json_string(b, ids->id, strlen(ids->id));
    af__buf_printf(b, ",\"object\":\"%s\",\"created\":%llu,\"model\":", object,
                   (unsigned long long)ids->created);
    af__buf_json_string(b, ids->model, strlen(ids->model));
}

static void put_usage(af_buf *b, int64_t in, int64_t out)
{
    af__buf_printf(b,
                   "\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                   "\"total_tokens\":%lld}",
                   (long long)in, (long long)out, (long long)(in + out));
}

void af__oai_completion_json(af_buf *b, const af__oai_ids *ids, const af_chat_result *r)
{
    const char *text = r->content ? r->content : "";
    size_t len = r->content ? r->content_len : 0;
    const char *fr = r->finish_reason[0] ? r->finish_reason : "stop";
    put_head(b, ids, ids->chat ? "chat.completion" : "text_completion");
    if (ids->chat) {
        af__buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        "\"content\":");
        af__buf_json_string(b, text, len);
        af__buf_puts(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
    } else {
        af__buf_puts(b, ",\"choices\":[{\"text\":");
        af__buf_json_string(b, text, len);
        af__buf_puts(b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    }
    af__buf_json_string(b, fr, strlen(fr));
    af__buf_puts(b, "}],");
    put_usage(b, r->input_tokens, r->output_tokens);
    af__buf_puts(b, "}");
}

void af__oai_delta_prefix(af_buf *b, const af__oai_ids *ids)
{
    af__buf_puts(b, "data: ");
    put_head(b, ids, ids->chat ? "chat.completion.chunk" : "text_completion");
    af__buf_puts(b, ids->chat ? ",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                              : ",\"choices\":[{\"text\":");
}

void af__oai_delta_suffix(af_buf *b, const af__oai_ids *ids)
{
    af__buf_puts(b, ids->chat ? "},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                              : ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

void af__oai_delta_event(af_buf *b, const char *prefix, size_t prefix_len, const char *suffix,
                         size_t suffix_len, const char *text, size_t len)
{
    af__buf_append(b, prefix, prefix_len);
    af__buf_json_string(b, text, len);
    af__buf_append(b, suffix, suffix_len);
}

void af__oai_role_event(af_buf *b, const af__oai_ids *ids)
{
    af__buf_puts(b, "data: ");
    put_head(b, ids, "chat.completion.chunk");
    af__buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
                    "\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

void af__oai_finish_event(af_buf *b, const af__oai_ids *ids, const char *finish_reason)
{
    const char *fr = finish_reason && *finish_reason ? finish_reason : "stop";
    af__buf_puts(b, "data: ");
    put_head(b, ids, ids->chat ? "chat.completion.chunk" : "text_completion");
    af__buf_puts(b, ids->chat ? ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                                "\"finish_reason\":"
                              : ",\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,"
                                "\"finish_reason\":");
    af__buf_json_string(b, fr, strlen(fr));
    af__buf_puts(b, "}]}\n\n");
}

void af__oai_usage_event(af_buf *b, const af__oai_ids *ids, int64_t in, int64_t out)
{
    af__buf_puts(b, "data: ");
    put_head(b, ids, ids->chat ? "chat.completion.chunk" : "text_completion");
    af__buf_puts(b, ",\"choices\":[],");
    put_usage(b, in, out);
    af__buf_puts(b, "}\n\n");
}

void af__oai_error_event(af_buf *b, int status, const char *code, const char *msg)
{
    af__buf_puts(b, "data: ");
    put_error_object(b, status, code, NULL, msg);
    af__buf_puts(b, "\n\n");
}

void af__oai_models_json(af_buf *b, const af_serving_model_entry *m, size_t n)
{
    af__buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        af__buf_json_string(b, m[i].id, strlen(m[i].id));
        af__buf_printf(b, ",\"object\":\"model\",\"created\":%llu,\"owned_by\":",
                       (unsigned long long)m[i].created_s);
        af__buf_json_string(b, m[i].owned_by, strlen(m[i].owned_by));
        af__buf_putc(b, '}');
    }
    af__buf_puts(b, "]}");
}
