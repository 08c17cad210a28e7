/*
 * server/openai_json.h - the OpenAI API's JSON shapes as the daemon's /v1 front door writes
 * them: errors ({"error":{"message","type","param","code"}}), chat.completion, text_completion,
 * chat.completion.chunk / text_completion stream events (server-sent events), and the model
 * list. Pure formatting into an af_buf: no I/O, no state.
 *
 * Threads: every function only touches its arguments, so any thread may call them; the
 * stream event pieces are written on gateway threads (on_delta), the rest on the loops.
 */
#ifndef AF_SERVER_OPENAI_JSON_H
#define AF_SERVER_OPENAI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/serving.h"
#include "util/buf.h"

/* The OpenAI error "type" of an HTTP status: invalid_request_error (4xx), authentication_error
 * (401), permission_error (403), not_found_error (404), rate_limit_error (429), server_error
 * (5xx). */
const char *af__oai_error_type(int status);

/* {"error":{"message":msg,"type":<of status>,"param":param|null,"code":code|null}} */
void af__oai_error_json(af_buf *b, int status, const char *code, const char *param,
                        const char *msg);

/* What every body and event of one answer repeats. */
typedef struct af__oai_ids {
    const char *id;    /* "chatcmpl-..." / "cmpl-..." */
    const char *model; /* the model the client named (or the backend answered with) */
    uint64_t created;  /* unix seconds */
    bool chat;         /* chat.completion(.chunk), else text_completion */
} af__oai_ids;

/* The whole non-streamed answer: chat.completion or text_completion with one choice and
 * usage. */
void af__oai_completion_json(af_buf *b, const af__oai_ids *ids, const af_chat_result *r);

/* A stream event carrying one delta of text is prefix + JSON string + suffix; the prefix and
 * suffix are written once per call (they repeat the id, model and created). */
void af__oai_delta_prefix(af_buf *b, const af__oai_ids *ids);
void af__oai_delta_suffix(af_buf *b, const af__oai_ids *ids);
/* One whole delta event: "data: {...}\n\n". */
void af__oai_delta_event(af_buf *b, const char *prefix, size_t prefix_len, const char *suffix,
                         size_t suffix_len, const char *text, size_t len);
/* The chat stream's first event: delta {"role":"assistant","content":""}. */
void af__oai_role_event(af_buf *b, const af__oai_ids *ids);
/* The event with an empty delta and the finish_reason. */
void af__oai_finish_event(af_buf *b, const af__oai_ids *ids, const char *finish_reason);
/* stream_options.include_usage: "choices":[] and the usage. */
void af__oai_usage_event(af_buf *b, const af__oai_ids *ids, int64_t in, int64_t out);
/* A failure after the stream began: "data: {"error":{...}}\n\n". */
void af__oai_error_event(af_buf *b, int status, const char *code, const char *msg);

/* {"object":"list","data":[{"id","object":"model","created","owned_by"}...]} */
void af__oai_models_json(af_buf *b, const af_serving_model_entry *m, size_t n);

#endif
