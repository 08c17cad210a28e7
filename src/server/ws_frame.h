/*
 * server/ws_frame.h - the WebSocket protocol (RFC 6455) for the daemon's /ws: the opening
 * handshake's checks and accept key, an incremental reader for client frames, a UTF-8
 * validator and the server frame encoder.
 *
 * Pure functions over caller-owned bytes, no I/O: ws.c moves the bytes through the HTTP
 * loop's connection (so TLS, once a connection has it, applies to WebSocket traffic too), and
 * the fuzzer and unit tests drive these directly. Only the reader allocates (the message it
 * reassembles, at most its max_message bytes).
 */
#ifndef AF_SERVER_WS_FRAME_H
#define AF_SERVER_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/http_parse.h"
#include "util/buf.h"

enum {
    AF__WS_OP_CONT = 0x0,
    AF__WS_OP_TEXT = 0x1,
    AF__WS_OP_BINARY = 0x2,
    AF__WS_OP_CLOSE = 0x8,
    AF__WS_OP_PING = 0x9,
    AF__WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 §7.4.1, and 1013 from the IANA registry). */
enum {
    AF__WS_CLOSE_NORMAL = 1000,
    AF__WS_CLOSE_GOING_AWAY = 1001,
    AF__WS_CLOSE_PROTOCOL = 1002,
    AF__WS_CLOSE_INVALID_DATA = 1007,
    AF__WS_CLOSE_TOO_BIG = 1009,
    AF__WS_CLOSE_INTERNAL = 1011,
    AF__WS_CLOSE_TRY_AGAIN = 1013,
};

#define AF__WS_MAX_HEAD 10     /* a server frame's head: 2 + 8 bytes of length */
#define AF__WS_MAX_CONTROL 125 /* a control frame's payload */
#define AF__WS_ACCEPT_LEN 28   /* base64 of a SHA-1 */

/* ---------------------------------------------------------------------------------------- */
/* Opening handshake (§4.2.1).                                                               */

/* Why an upgrade request was refused: the HTTP status (400, 403 or 426), the JSON error's
 * code and a static message. */
typedef struct af__ws_refusal {
    int status;
    const char *code;
    const char *message;
} af__ws_refusal;

/* Checks an upgrade request the HTTP loop routed to /ws (a GET whose Upgrade holds websocket
 * and whose Connection holds upgrade): HTTP/1.1, no body, Sec-WebSocket-Version exactly 13
 * (else 426; the answer must carry "Sec-WebSocket-Version: 13"), one Sec-WebSocket-Key that is
 * the base64 of 16 bytes (else 400) and at most one Origin (else 403; whether that Origin may
 * connect is the request gate's rule, checked earlier). On
 * success returns 0 and writes the Sec-WebSocket-Accept value, NUL-terminated, to accept;
 * otherwise returns the status and fills *why. */
int af__ws_handshake_check(const af__http_request *req, char accept[AF__WS_ACCEPT_LEN + 1],
                           af__ws_refusal *why);

/* True when key[0..len) is canonical base64 of exactly 16 bytes (24 characters, "==" last). */
bool af__ws_key_valid(const char *key, size_t len);

/* base64(SHA-1(key + the RFC's GUID)) into out, NUL-terminated. 0, or -EIO when libcrypto
 * fails. */
int af__ws_accept_key(const char *key, size_t len, char out[AF__WS_ACCEPT_LEN + 1]);

/* ---------------------------------------------------------------------------------------- */
/* UTF-8 (RFC 3629): incremental, so a text message is checked as its fragments arrive.      */

typedef struct af__utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range the next continuation byte must fall in */
} af__utf8;

void af__utf8_init(af__utf8 *u);
/* Feeds p[0..n); false as soon as the bytes so far cannot start valid UTF-8 (overlongs,
 * surrogates and code points above U+10FFFF included). */
bool af__utf8_feed(af__utf8 *u, const uint8_t *p, size_t n);
/* True when the bytes fed so far end on a character boundary. */
bool af__utf8_complete(const af__utf8 *u);

/* ---------------------------------------------------------------------------------------- */
/* Reading client frames (§5).                                                               */

typedef enum af__ws_event_type {
    AF__WS_EV_NONE,    /* the input was used up before an event completed */
    AF__WS_EV_MESSAGE, /* a whole text or binary message (fragments reassembled) */
    AF__WS_EV_PING,
    AF__WS_EV_PONG,
    AF__WS_EV_CLOSE, /* the peer's close frame, validated */
    AF__WS_EV_ERROR, /* the connection must fail: close with code */
} af__ws_event_type;

typedef struct af__ws_event {
    af__ws_event_type type;
    uint8_t opcode;      /* MESSAGE: AF__WS_OP_TEXT or AF__WS_OP_BINARY */
    const uint8_t *data; /* MESSAGE, PING, PONG: the payload; CLOSE: the reason. Borrowed
                          * from the reader until its next call */
    size_t len;
    uint16_t code;      /* CLOSE: the peer's code (0 when it sent none); ERROR: the close code */
    const char *reason; /* ERROR: a static sentence for the close frame */
} af__ws_event;

typedef struct af__ws_reader {
    size_t max_message;
    bool failed;
    bool deliver_done; /* the last event handed out the message buffer: reset it next call */
    /* the frame being read */
    uint8_t head[14];
    size_t head_have, head_need;
    bool fin;
    uint8_t opcode;
    uint8_t mask[4];
    uint64_t left;  /* payload bytes still to come */
    uint64_t taken; /* payload bytes read (the mask's phase) */
    /* the message being reassembled: msg_op is 0 between messages */
    uint8_t msg_op;
    af_buf msg;
    af__utf8 utf8;
    uint8_t ctl[AF__WS_MAX_CONTROL];
    size_t ctl_len;
} af__ws_reader;

/* max_message: the largest message accepted (reassembled); more fails with 1009. */
void af__ws_reader_init(af__ws_reader *r, size_t max_message);
void af__ws_reader_free(af__ws_reader *r);

/* Consumes in[0..len) until one event completes or the input is used up, and returns the
 * bytes consumed (the rest belongs to later events: call again with it). Client frames must
 * be masked (else 1002); RSV bits, unknown opcodes, fragmented or long control frames,
 * non-minimal lengths and continuations out of place fail with 1002; a text message or close
 * reason that is not UTF-8 with 1007; a message over max_message with 1009. After an ERROR
 * event every call reports it again and consumes nothing. */
size_t af__ws_read(af__ws_reader *r, const uint8_t *in, size_t len, af__ws_event *ev);

/* True when code may appear in a close frame on the wire (§7.4). */
bool af__ws_close_code_valid(uint16_t code);

/* ---------------------------------------------------------------------------------------- */
/* Server frames: final, unmasked.                                                           */

/* Writes the head of a frame with opcode and a payload of len bytes; returns its length
 * (2, 4 or 10). */
size_t af__ws_frame_head(uint8_t out[AF__WS_MAX_HEAD], uint8_t opcode, uint64_t len);

/* A whole close frame: code (0 = none, then no reason either) and reason, cut to fit the
 * 125-byte control payload. Returns its length. */
size_t af__ws_close_frame(uint8_t out[2 + AF__WS_MAX_CONTROL], uint16_t code, const char *reason);

#endif
