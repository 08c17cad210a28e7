/*
 * server/http_parse.h - HTTP/1.1 request framing (RFC 9112) for the daemon's own event loop:
 * the request head, the chunked transfer coding, and query-string arguments.
 *
 * Pure functions over caller-owned bytes: nothing here allocates except the chunked decoder,
 * which appends to the caller's af_buf. A parsed request's slices point into the buffer that
 * was parsed and are valid while that buffer is unchanged.
 *
 * The parser is strict where laxness enables request smuggling (both Content-Length and
 * Transfer-Encoding, disagreeing Content-Lengths, obsolete line folding, whitespace before a
 * header's colon, a transfer coding other than chunked) and tolerant where clients differ
 * harmlessly (bare LF line ends, optional whitespace around values, header name case).
 */
#ifndef AF_SERVER_HTTP_PARSE_H
#define AF_SERVER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AF__HTTP_MAX_HEADERS 64

typedef struct af__http_header {
    const char *name;
    size_t name_len;
    const char *value; /* without leading and trailing whitespace */
    size_t value_len;
} af__http_header;

typedef struct af__http_request {
    const char *method; /* token as sent (case-sensitive per RFC 9110) */
    size_t method_len;
    const char *target; /* request-target as sent */
    size_t target_len;
    const char *path; /* the target's path: origin-form up to '?', or absolute-form's path */
    size_t path_len;
    const char *query; /* after '?' (without it); NULL when there is no '?' */
    size_t query_len;
    int minor_version; /* HTTP/1.<minor_version>: 0 or 1 */
    af__http_header headers[AF__HTTP_MAX_HEADERS];
    size_t n_headers;
    size_t head_len; /* bytes of request line + headers + the empty line */

    /* Framing and connection handling, derived from the headers. */
    bool has_content_length;
    uint64_t content_length;
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive */
    bool expect_continue;   /* Expect: 100-continue */
    bool upgrade_websocket; /* Upgrade: websocket together with Connection: upgrade */
} af__http_request;

/* Why a request was refused: the HTTP status to answer with (400, 431, 501, 505) and a
 * message naming the line, the byte offset and what was expected. */
typedef struct af__http_error {
    int status;
    char message[192];
} af__http_error;

enum {
    AF__HTTP_OK = 0,
    AF__HTTP_INCOMPLETE = 1, /* no complete head yet: read more and call again */
    AF__HTTP_ERROR = -1,     /* see af__http_error */
};

/* Parses the request head at the start of buf[0..len). A head longer than max_head bytes (or
 * with more than AF__HTTP_MAX_HEADERS fields) is an error with status 431, reported as soon as
 * len exceeds max_head without a complete head. A malformed line is refused as soon as it has
 * ended, without waiting for the rest of the head; no prefix of a valid head is refused.
 * Empty lines before the request line are skipped (RFC 9112 §2.2) and counted in head_len. */
int af__http_parse_request(const char *buf, size_t len, size_t max_head, af__http_request *req,
                           af__http_error *err);

/* The first header named name (case-insensitive), or NULL; *len gets the value's length. */
const char *af__http_header_get(const af__http_request *req, const char *name, size_t *len);

/* Incremental decoder for the chunked transfer coding (RFC 9112 §7.1). Chunk extensions and
 * trailer fields are read and discarded. */
typedef struct af__http_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_len;    /* bytes of the current size or trailer line so far */
    size_t consumed;    /* total input bytes consumed, for error offsets */
} af__http_chunked;

void af__http_chunked_init(af__http_chunked *c);

/* Consumes in[0..len), appending the decoded data to out. Returns the number of input bytes
 * consumed (less than len only once done: what follows belongs to the next request), or
 * AF__HTTP_ERROR with err filled: 400 for malformed framing, 413 when the decoded body would
 * exceed limit bytes. *done becomes true after the last chunk and its trailer section. */
long af__http_chunked_feed(af__http_chunked *c, const char *in, size_t len, af_buf *out,
                           size_t limit, bool *done, af__http_error *err);

/* Query-string argument: the value of the first key=value pair of query[0..query_len) whose
 * key equals key, percent-decoded ('+' as space) into out (NUL-terminated, cap > 0). A pair
 * without '=' has an empty value. Returns false when the key is absent or the decoded value
 * (or its escapes) is malformed, holds a NUL (%00), or does not fit. */
bool af__http_query_arg(const char *query, size_t query_len, const char *key, char *out,
                        size_t cap);

#endif
