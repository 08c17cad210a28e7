/*
 * util/str.h - small string helpers the C library lacks.
 */
#ifndef AF_UTIL_STR_H
#define AF_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
