/*
 * server/openai_request.h - the OpenAI front door's requests: the body of POST
 * /v1/chat/completions and /v1/completions checked and parsed into an af_chat_request (every
 * field's type and range, the message grammar of limits.h, the input against
 * server.max_input_tokens), and the OpenAI-shaped error responses the routes answer with.
 * The call's lifecycle (start, relay, finish) is routes_openai.c.
 *
 * Threads: the loops, on their own requests and responses; nothing is shared.
 */
#ifndef AF_SERVER_OPENAI_REQUEST_H
#define AF_SERVER_OPENAI_REQUEST_H

#include <jansson.h>
#include <stdbool.h>

#include "agentaflow/serving.h"
#include "server/server_int.h"

/* A parsed body. Owns doc and msgs (af__oai_body_free); the request's strings point into doc,
 * so it lives as long as the request is used. */
typedef struct af__oai_body {
    json_t *doc;
    af_chat_request req;
    af_chat_message *msgs;
} af__oai_body;

/* The body of either POST route (chat: messages, else prompt) into b->req. False with the
 * 400 (or 500) that names the field in rs; b is then to be freed all the same. */
bool af__oai_parse_body(af__req *rq, af__resp *rs, bool chat, af__oai_body *b);
void af__oai_body_free(af__oai_body *b);

/* rs becomes an OpenAI error: status, {"error":{"message","type","param","code"}}. */
void af__oai_resp_error(af__resp *rs, int status, const char *code, const char *param,
                        const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif
