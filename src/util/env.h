/*
 * util/env.h - environment variables with the OpenTelemetry parsing rules: an empty value is
 * the same as unset; a value that does not parse is logged as a warning and ignored.
 */
#ifndef AF_UTIL_ENV_H
#define AF_UTIL_ENV_H

#include <stdbool.h>
#include <stdint.h>

/* getenv(), but NULL for an empty value. Borrowed from the environment. */
const char *af__getenv(const char *name);
/* Sets *out from a boolean variable: only "true" (any case) is true; values other than
 * "true"/"false" are warned about and read as false. Returns true when the variable is set. */
bool af__env_bool(const char *name, bool *out);
/* Sets *out from an unsigned decimal variable in [min, max]. Returns true when set and valid;
 * an invalid value is warned about (naming the variable and the range) and leaves *out. */
bool af__env_u32(const char *name, uint32_t min, uint32_t max, uint32_t *out);
/* Same for a floating point value in [min, max]. */
bool af__env_double(const char *name, double min, double max, double *out);

#endif
