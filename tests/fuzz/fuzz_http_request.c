/*
 * libFuzzer target: the daemon's request routing. libwebsockets parses the HTTP framing; what
 * the daemon itself parses from a request is the path (route table match with {param}
 * segments, trailing slash) and the method set, so the input is "<method byte><path>".
 * Properties checked: no crash, parameters are NUL-terminated segments of the path without
 * '/', a matched route's pattern accepts the method, and 405 information is consistent.
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
    memset(params, 0x7f, sizeof(params));
    unsigned allowed = 0;
    int r = af__route_match(path, method, &allowed, params);
    if (r >= 0) {
        if ((size_t)r >= af__nroutes || !(af__routes[r].methods & method) || !(allowed & method))
            abort();
        for (int i = 0; i < AF__MAX_PARAMS; i++)
            if (params[i][0] != 0x7f &&
                (memchr(params[i], '\0', AF_GPU_ID_MAX) == NULL || strchr(params[i], '/')))
                abort();
    }
    free(path);
    return 0;
}
