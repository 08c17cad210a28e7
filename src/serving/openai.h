/*
 * serving/openai.h - reading the OpenAI-compatible backend's answers (jansson): a streamed
 * chunk (chat.completion.chunk / text_completion) or a whole response, and the request body
 * sent to it.
 *
 * Ownership: a parsed answer's strings point into its JSON document, which the caller holds
 * (af__oai_answer_free). Threads: no shared state.
 */
#ifndef AF_SERVING_OPENAI_H
#define AF_SERVING_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serving/serving_int.h"
#include "util/buf.h"

typedef struct af__oai_answer {
    json_t *root;
    const char *text; /* the content (delta or whole); NULL when the chunk has none */
    size_t text_len;
    const char *finish_reason;           /* NULL until the backend says */
    const char *id, *model;              /* NULL when absent */
    int64_t input_tokens, output_tokens; /* -1 without usage */
} af__oai_answer;

/*
 * Parses one chunk (whole = false: choices[0].delta.content for chat, choices[0].text for
 * text completions) or a whole response (whole = true: choices[0].message.content or
 * choices[0].text). A chunk may have no choices (the final usage chunk). An {"error": ...}
 * object returns -EIO with its message. 0, AF_EPARSE or -EIO; err names what was wrong.
 */
int af__oai_parse(const char *json, size_t len, af_chat_operation op, bool whole,
                  af__oai_answer *out, char *err, size_t err_len);
void af__oai_answer_free(af__oai_answer *a);

/* The request body for the stream's call: model, messages or prompt, max_tokens, temperature
 * when given, user, stream (+ stream_options.include_usage). Sets b->failed when out of
 * memory. */
void af__oai_request_body(const af__stream *st, const char *model, af_buf *b);

#endif
