/*
 * libFuzzer target for the OTEL_RESOURCE_ATTRIBUTES parser: arbitrary bytes, copied and
 * NUL-terminated, into af_resource_parse_env. A successful parse must give a resource whose
 * keys are unique and non-empty and whose values are NUL-terminated strings of their stated
 * length; ASan/LSan catch crashes and leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    af_resource *r = NULL;
    int rc = af_resource_parse_env(s, &r);
    if (rc == 0) {
        size_t n = 0;
        const af_attr *a = af_resource_attrs(r, &n);
        for (size_t i = 0; i < n; i++) {
            if (!a[i].key[0] || a[i].type != AF_VAL_STRING ||
                strlen(a[i].v.s.ptr) != a[i].v.s.len ||
                af_resource_get_string(r, a[i].key) != a[i].v.s.ptr)
                abort();
            for (size_t k = 0; k < i; k++)
                if (strcmp(a[k].key, a[i].key) == 0)
                    abort();
        }
        af_resource_free(r);
    } else if (rc != AF_EPARSE || r != NULL) {
        abort();
    }
    free(s);
    return 0;
}
