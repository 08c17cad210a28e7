/* Human text for the library's error codes. */
#include <string.h>

#include "agentaflow/common.h"

const char *af_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case AF_ETIMEDOUT:
        return "operation timed out";
    case AF_ESHUTDOWN:
        return "already shut down";
    case AF_EEXPORT:
        return "export failed";
    case AF_EPARSE:
        return "malformed input";
    case AF_EFULL:
        return "queue full";
    case AF_ENOTFOUND:
        return "not found";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
