/*
 * export/pb_write.h - protobuf wire-format primitives for hand-written encoders (internal).
 *
 * Header-only: the encoders call these once per field, so they are inline. Writers take a
 * cursor into memory the caller has already reserved (the encoder measures first) and return
 * the advanced cursor; nothing here allocates or checks bounds. Little-endian output is built
 * byte by byte, so the host's byte order does not matter.
 */
#ifndef AF_EXPORT_PB_WRITE_H
#define AF_EXPORT_PB_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Wire types. */
#define AF_PB_VARINT 0u
#define AF_PB_I64 1u
#define AF_PB_LEN 2u
#define AF_PB_I32 5u

/* Tag of a field number below 16, which fits one byte. */
#define AF_PB_TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/* Bytes a base-128 varint of v takes (1..10). */
static inline size_t af__pb_varint_size(uint64_t v)
{
    /* 1 + floor(bit length / 7) without a loop; v | 1 keeps clz defined for 0. */
    unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);
    return (bits * 9u + 64u) / 64u;
}

static inline uint8_t *af__pb_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* int32 and enum fields are sign-extended to 64 bits: a negative value takes 10 bytes. */
static inline uint64_t af__pb_int32_bits(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

static inline uint8_t *af__pb_put_fixed32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static inline uint8_t *af__pb_put_fixed64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

/* A double is its IEEE-754 bit pattern as fixed64 (NaN payloads kept). */
static inline uint8_t *af__pb_put_double(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return af__pb_put_fixed64(p, bits);
}

/* Size of a length-delimited field with a one-byte tag and a body of len bytes. */
static inline size_t af__pb_ld_size(size_t len)
{
    return 1 + af__pb_varint_size(len) + len;
}

/* Tag and length prefix of a length-delimited field with a one-byte tag. */
static inline uint8_t *af__pb_put_ld_header(uint8_t *p, uint8_t tag, size_t len)
{
    *p++ = tag;
    return af__pb_put_varint(p, len);
}

/* A whole length-delimited field (string or bytes) with a one-byte tag. */
static inline uint8_t *af__pb_put_bytes(uint8_t *p, uint8_t tag, const void *s, size_t len)
{
    p = af__pb_put_ld_header(p, tag, len);
    if (len)
        memcpy(p, s, len);
    return p + len;
}

#endif
