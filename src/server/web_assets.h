/*
 * server/web_assets.h - the dashboard page (files under web/) embedded into the library at build
 * time.
 *
 * cmake/WebAssets.cmake turns every file under web/ into a byte array in the generated
 * ${CMAKE_BINARY_DIR}/generated/web_assets.c, so the daemon serves the page with no files on
 * disk and no network (the page itself loads nothing from outside the daemon).
 *
 * Ownership: every pointer refers to static, read-only data that lives as long as the
 * program; nothing is allocated and nothing needs freeing. Thread-safe (read-only).
 */
#ifndef AF_SERVER_WEB_ASSETS_H
#define AF_SERVER_WEB_ASSETS_H

#include <stddef.h>

typedef struct af_web_asset {
    const char *path;          /* "/index.html", "/app.js", ...: the URL path it answers */
    const unsigned char *data; /* the file's bytes, followed by one NUL not counted in len */
    size_t len;
    const char *content_type; /* "text/html; charset=utf-8", ... */
} af_web_asset;

/*
 * The asset serving the URL path `path` ("/" and "" map to "/index.html"; a query string or
 * fragment after '?' or '#' is ignored; the leading '/' is optional). NULL when there is no
 * such asset or path is NULL.
 */
const af_web_asset *af__web_asset_lookup(const char *path);

/* Every embedded asset, for listings and tests: *n receives the count. */
const af_web_asset *af__web_assets(size_t *n);

#endif
