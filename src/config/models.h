/*
 * config/models.h - the serving.models row (AF_CFG_MODELS): reading it from YAML with a
 * diagnostic at the line of every bad field, and freeing, copying and dumping it.
 *
 * Ownership: af_config_model arrays and every string in them are malloc'd and owned by the
 * configuration that holds them. Threads: no shared state.
 */
#ifndef AF_CONFIG_MODELS_H
#define AF_CONFIG_MODELS_H

#include <yaml.h>

#include "config/config_int.h"
#include "util/buf.h"

/* How the reader reports a problem at a node (the loader's diagnostics). */
typedef void (*af__models_report)(void *ctx, af_diag_severity sev, const yaml_node_t *n,
                                  const char *key, const char *msg);

/*
 * Reads a YAML list of model mappings (at most max). 0 with *out / *n set (both empty for an
 * empty list or null), AF_EPARSE after reporting each problem (nothing set), or -ENOMEM.
 */
int af__config_models_read(yaml_document_t *doc, const yaml_node_t *v, size_t max,
                           af_config_model **out, size_t *n, af__models_report report, void *ctx);
void af__config_models_free(af_config_model *m, size_t n);
/* Deep copy. 0 or -ENOMEM (nothing allocated). */
int af__config_models_copy(const af_config_model *src, size_t n, af_config_model **out);
/* One-line JSON of the list; api_key is "[redacted]" with redact. */
void af__config_models_json(af_buf *b, const af_config_model *m, size_t n, bool redact);

#endif
