/*
 * util/str.h - small string helpers the C library lacks.
 */
#ifndef AF_UTIL_STR_H
#define AF_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* strdup that accepts NULL (returns NULL). */
char *af__strdup(const char *s);
char *af__strndup(const char *s, size_t n);
/* Copies at most size-1 bytes and always NUL-terminates (size > 0). Returns strlen(src). */
size_t af__strlcpy(char *dst, const char *src, size_t size);
/* Case-insensitive ASCII equality of a counted string and a C string. */
bool af__str_ieq(const char *a, size_t alen, const char *b);
/* Byte length of the longest prefix of s[0..len) holding at most max_chars UTF-8 characters,
 * never splitting a multi-byte sequence. */
size_t af__utf8_prefix(const char *s, size_t len, size_t max_chars);

/* The value of one hexadecimal digit (either case), or -1. Inline: the chunked-body parser
 * calls it per byte. */
static inline int af__hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated; *out_len, may be NULL, gets the length);
 * '+' becomes a space when plus_space (query strings). The one decoder for request paths,
 * query strings, baggage values and resource attributes. 0; -EINVAL for a malformed escape or
 * %00 (a NUL would silently cut the C string short), *out_len then gets the escape's offset
 * in s; -ENOSPC when the result does not fit in cap bytes (n + 1 always fits). */
int af__pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap,
                   size_t *out_len);
/* Trims spaces and tabs from both ends of s[0..n), then percent-decodes it (no '+' rule)
 * into a new string the caller frees. NULL with *bad set on a malformed escape or %00, NULL
 * with *bad untouched on ENOMEM. For the "k1=v1,k2=v2" header lists of OTEL_* variables. */
char *af__pct_decode_trimmed(const char *s, size_t n, bool *bad);
/* Strict decimal: digits only (no sign, space, hex or leading '+'), value <= max. 0, -EINVAL
 * (not a decimal number), -ERANGE (over max). */
int af__parse_u64(const char *s, uint64_t max, uint64_t *out);
/* Strict decimal with an optional fraction: digits[.digits] (no sign, exponent, hex, inf or
 * nan). 0 or -EINVAL; range checks are the caller's. */
int af__parse_decimal(const char *s, double *out);

#endif
