/* Environment variable parsing per the OpenTelemetry configuration rules. */
#include "util/env.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#include "agentaflow/log.h"

const char *af__getenv(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

bool af__env_bool(const char *name, bool *out)
{
    const char *v = af__getenv(name);
    if (!v)
        return false;
    if (strcasecmp(v, "true") == 0) {
        *out = true;
    } else {
        if (strcasecmp(v, "false") != 0)
            af_log(AF_LOG_WARN, "%s: expected true or false, got \"%s\"; treating it as false",
                   name, v);
        *out = false;
    }
    return true;
}

bool af__env_u32(const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
    const char *v = af__getenv(name);
    if (!v)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
        af_log(AF_LOG_WARN, "%s: expected an integer between %u and %u, got \"%s\"; ignored", name,
               min, max, v);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

bool af__env_double(const char *name, double min, double max, double *out)
{
    const char *v = af__getenv(name);
    if (!v)
        return false;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end != '\0' || isnan(d) || d < min || d > max) {
        af_log(AF_LOG_WARN, "%s: expected a number between %g and %g, got \"%s\"; ignored", name,
               min, max, v);
        return false;
    }
    *out = d;
    return true;
}
