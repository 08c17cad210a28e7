/* Incremental Server-Sent Events parsing (see sse.h for the rules it follows). */
#include "serving/sse.h"

#include <errno.h>
#include <string.h>

#include "agentaflow/common.h"
#include "util/str.h"

void af__sse_init(af__sse *p, size_t max_line, size_t max_data)
{
    memset(p, 0, sizeof(*p));
    af__buf_init(&p->line);
    af__buf_init(&p->data);
    p->max_line = max_line;
    p->max_data = max_data;
}

void af__sse_free(af__sse *p)
{
    af__buf_clear(&p->line);
    af__buf_clear(&p->data);
}

bool af__sse_is_done(const af__sse_event *ev)
{
    return ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0;
}

static int dispatch(af__sse *p, af__sse_cb cb, void *ctx)
{
    if (!p->has_data) {
        p->type[0] = '\0';
        return 0;
    }
    if (p->data.len && p->data.data[p->data.len - 1] == '\n')
        p->data.len--; /* the newline after the last data line is not part of the data */
    af__buf_terminate(&p->data);
    if (p->data.failed)
        return -ENOMEM;
    af__sse_event ev = {p->type[0] ? p->type : "message", (const char *)p->data.data, p->data.len};
    int rc = cb(ctx, &ev);
    af__buf_reset(&p->data);
    p->type[0] = '\0';
    p->has_data = false;
    return rc;
}

/* One complete line (without its terminator). */
static int process_line(af__sse *p, af__sse_cb cb, void *ctx)
{
    const char *l = (const char *)p->line.data;
    size_t n = p->line.len;
    if (n == 0)
        return dispatch(p, cb, ctx);
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    const char *value = colon ? colon + 1 : l + n;
    size_t value_len = (size_t)(l + n - value);
    if (value_len && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(l, "data", 4) == 0) {
        if (p->data.len + value_len + 1 > p->max_data)
            return AF_EPARSE;
        af__buf_append(&p->data, value, value_len);
        af__buf_putc(&p->data, '\n');
        p->has_data = true;
        return p->data.failed ? -ENOMEM : 0;
    }
    if (name_len == 5 && memcmp(l, "event", 5) == 0) {
        size_t k = value_len < sizeof(p->type) - 1 ? value_len : sizeof(p->type) - 1;
        memcpy(p->type, value, k);
        p->type[k] = '\0';
    }
    return 0; /* id, retry and unknown fields: nothing the gateway needs */
}

static int end_line(af__sse *p, af__sse_cb cb, void *ctx)
{
    int rc = process_line(p, cb, ctx);
    af__buf_reset(&p->line);
    return rc;
}

int af__sse_feed(af__sse *p, const char *buf, size_t len, af__sse_cb cb, void *ctx)
{
    if (p->failed)
        return p->fail_rc;
    size_t i = 0;
    if (!p->started) {
        static const char bom[] = "\xEF\xBB\xBF";
        /* A BOM split across feeds is rare enough to treat as data; whole ones are skipped. */
        if (len >= 3 && memcmp(buf, bom, 3) == 0)
            i = 3;
        if (len)
            p->started = true;
    }
    int rc = 0;
    for (; i < len && rc == 0; i++) {
        char ch = buf[i];
        if (ch == '\n' && p->after_cr) {
            p->after_cr = false; /* the \n of a \r\n: the line already ended */
            continue;
        }
        p->after_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            rc = end_line(p, cb, ctx);
            continue;
        }
        /* Copy the run up to the next terminator at once. */
        size_t j = i;
        while (j < len && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (p->line.len + (j - i) > p->max_line) {
            rc = AF_EPARSE;
            break;
        }
        af__buf_append(&p->line, buf + i, j - i);
        if (p->line.failed)
            rc = -ENOMEM;
        i = j - 1;
    }
    if (rc) {
        p->failed = true;
        p->fail_rc = rc;
    }
    return rc;
}
