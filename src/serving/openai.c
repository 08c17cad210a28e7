/* The OpenAI-compatible wire format on the backend side: request bodies and answers. */
#include "serving/openai.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        snprintf(err, len, "%s", msg);
}

static const char *str_or_null(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t tokens(json_t *usage, const char *key)
{
    json_t *v = json_object_get(usage, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

/* The content of choices[0], or an error message in err. */
static int read_choice(json_t *choice, af_chat_operation op, bool whole, af__oai_answer *out,
                       char *err, size_t err_len)
{
    if (!json_is_object(choice)) {
        set_err(err, err_len, "choices[0]: expected an object");
        return AF_EPARSE;
    }
    json_t *text;
    const char *field;
    if (op == AF_CHAT_OP_TEXT_COMPLETION) {
        text = json_object_get(choice, "text");
        field = "choices[0].text";
    } else {
        json_t *msg = json_object_get(choice, whole ? "message" : "delta");
        if (!json_is_object(msg)) {
            set_err(err, err_len,
                    whole ? "choices[0].message: expected an object"
                          : "choices[0].delta: expected an object");
            return AF_EPARSE;
        }
        text = json_object_get(msg, "content");
        field = whole ? "choices[0].message.content" : "choices[0].delta.content";
    }
    if (json_is_string(text)) {
        out->text = json_string_value(text);
        out->text_len = json_string_length(text);
    } else if (text && !json_is_null(text)) {
        char m[96];
        snprintf(m, sizeof(m), "%s: expected a string", field);
        set_err(err, err_len, m);
        return AF_EPARSE;
    } else if (whole) {
        out->text = "";
    }
    out->finish_reason = str_or_null(json_object_get(choice, "finish_reason"));
    return 0;
}

int af__oai_parse(const char *json, size_t len, af_chat_operation op, bool whole,
                  af__oai_answer *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    out->input_tokens = out->output_tokens = -1;
    json_error_t jerr;
    out->root = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(out->root)) {
        char m[192];
        if (out->root)
            snprintf(m, sizeof(m), "backend answer: expected a JSON object");
        else
            snprintf(m, sizeof(m), "backend answer: invalid JSON at line %d: %.120s", jerr.line,
                     jerr.text);
        set_err(err, err_len, m);
        af__oai_answer_free(out);
        return AF_EPARSE;
    }
    json_t *e = json_object_get(out->root, "error");
    if (e && !json_is_null(e)) {
        const char *m = str_or_null(json_object_get(e, "message"));
        char msg[192];
        snprintf(msg, sizeof(msg), "backend error: %s",
                 m ? m : (str_or_null(e) ? str_or_null(e) : "(no message)"));
        set_err(err, err_len, msg);
        return -EIO;
    }
    out->id = str_or_null(json_object_get(out->root, "id"));
    out->model = str_or_null(json_object_get(out->root, "model"));
    json_t *usage = json_object_get(out->root, "usage");
    if (json_is_object(usage)) {
        out->input_tokens = tokens(usage, "prompt_tokens");
        out->output_tokens = tokens(usage, "completion_tokens");
    }
    json_t *choices = json_object_get(out->root, "choices");
    if (choices && !json_is_array(choices)) {
        set_err(err, err_len, "choices: expected an array");
        return AF_EPARSE;
    }
    if (json_array_size(choices) == 0) {
        if (whole) {
            set_err(err, err_len, "choices: expected at least one choice");
            return AF_EPARSE;
        }
        return 0; /* the usage-only last chunk */
    }
    return read_choice(json_array_get(choices, 0), op, whole, out, err, err_len);
}

void af__oai_answer_free(af__oai_answer *a)
{
    json_decref(a->root);
    a->root = NULL;
}

void af__oai_request_body(const af__stream *st, const char *model, af_buf *b)
{
    af__buf_puts(b, "{\"model\":");
    af__buf_json_string(b, model, strlen(model));
    if (st->op == AF_CHAT_OP_TEXT_COMPLETION) {
        af__buf_puts(b, ",\"prompt\":");
        af__buf_json_string(b, st->prompt, st->prompt_len);
    } else {
        af__buf_puts(b, ",\"messages\":[");
        for (size_t i = 0; i < st->n_messages; i++) {
            const af_chat_message *m = &st->messages[i];
            af__buf_puts(b, i ? ",{\"role\":" : "{\"role\":");
            af__buf_json_string(b, m->role, strlen(m->role));
            af__buf_puts(b, ",\"content\":");
            af__buf_json_string(b, m->content, m->content_len);
            af__buf_putc(b, '}');
        }
        af__buf_putc(b, ']');
    }
    af__buf_printf(b, ",\"max_tokens\":%u", st->max_tokens);
    if (!isnan(st->temperature))
        af__buf_printf(b, ",\"temperature\":%.17g", st->temperature);
    if (st->user) {
        af__buf_puts(b, ",\"user\":");
        af__buf_json_string(b, st->user, strlen(st->user));
    }
    if (st->stream)
        af__buf_printf(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":%s}",
                       st->include_usage ? "true" : "false");
    af__buf_putc(b, '}');
    af__buf_terminate(b);
}
