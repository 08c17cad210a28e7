/*
 * libFuzzer target: the daemon's request routing. The HTTP framing is http_parse.c's (fuzzed
 * by fuzz_http_head, which also routes the paths it parses); what routing sees of a request is
 * the path (route table match with {param} segments, trailing slash) and the method set, so
 * the input here is "<method byte><path>", which reaches deeper into the route table.
 * Properties checked: no crash, the matched pattern's parameters are NUL-terminated segments
 * of the path without '/', a matched route's pattern accepts the method, and 405 information
 * is consistent.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    unsigned method = 1u << (data[0] % 7);
    char *path = malloc(size);
    if (!path)
        return 0;
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    unsigned allowed = 0;
    int r = af__route_match(path, method, &allowed, params);
    if (r >= 0) {
        if ((size_t)r >= af__nroutes || !(af__routes[r].methods & method) || !(allowed & method))
            abort();
        /* Only the pattern's own parameters are filled in (the rest of params is unspecified:
         * af__route_match copies its whole scratch array). */
        int np = 0;
        for (const char *b = af__routes[r].pattern; (b = strchr(b, '{')) != NULL; b++)
            np++;
        if (np > AF__MAX_PARAMS)
            abort();
        for (int i = 0; i < np; i++)
            if (!params[i][0] || memchr(params[i], '\0', AF_GPU_ID_MAX) == NULL ||
                strchr(params[i], '/'))
                abort();
    }
    free(path);
    return 0;
}
