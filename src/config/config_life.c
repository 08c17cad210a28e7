/*
 * An af_tracing_config's life, driven by the key table (keys.c): init from the rows'
 * defaults, free, deep copy, and the checks that span several keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "config/models.h"
#include "util/str.h"

void af_tracing_config_clear(af_tracing_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (k->info.type == AF_CFG_STRING) {
            free(*(char **)af__config_field(cfg, k));
        } else if (k->info.type == AF_CFG_MAP || k->info.type == AF_CFG_KV_LIST) {
            size_t *n;
            af_config_kv **arr = af__config_kv_slot(cfg, k, &n);
            af__config_kv_free(*arr, *n);
        } else if (k->info.type == AF_CFG_LIST) {
            size_t *n;
            char ***arr = af__config_list_slot(cfg, k, &n);
            af__config_list_free(*arr, *n);
        } else if (k->info.type == AF_CFG_MODELS) {
            af__config_models_free(cfg->serving.models, cfg->serving.n_models);
        }
    }
    memset(cfg, 0, sizeof *cfg);
}

/* The released ABI's name (AGENTAFLOW_0), kept for services outside this tree. */
void af_tracing_config_free(af_tracing_config *cfg)
{
    af_tracing_config_clear(cfg);
}

int af_tracing_config_init(af_tracing_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char why[256];
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (k->info.type == AF_CFG_MAP || k->info.type == AF_CFG_KV_LIST ||
            k->info.type == AF_CFG_LIST || k->info.type == AF_CFG_MODELS)
            continue; /* empty by default */
        /* The table's defaults are valid by construction, so only ENOMEM can fail here. */
        int rc = af__config_set_scalar(cfg, k, k->info.default_text, why, sizeof why);
        if (rc != 0) {
            af_tracing_config_clear(cfg);
            return rc == -ENOMEM ? -ENOMEM : -EINVAL;
        }
    }
    return 0;
}

int af_tracing_config_copy(af_tracing_config *dst, const af_tracing_config *src)
{
    /* Start from a shallow copy, then replace every owned pointer by a copy of its own. */
    *dst = *src;
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (k->info.type == AF_CFG_STRING) {
            char **slot = (char **)af__config_field(dst, k);
            *slot = NULL;
        } else if (k->info.type == AF_CFG_MAP || k->info.type == AF_CFG_KV_LIST) {
            size_t *n;
            af_config_kv **arr = af__config_kv_slot(dst, k, &n);
            *arr = NULL;
            *n = 0;
        } else if (k->info.type == AF_CFG_LIST) {
            size_t *n;
            char ***arr = af__config_list_slot(dst, k, &n);
            *arr = NULL;
            *n = 0;
        } else if (k->info.type == AF_CFG_MODELS) {
            dst->serving.models = NULL;
            dst->serving.n_models = 0;
        }
    }
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (k->info.type == AF_CFG_STRING) {
            const char *s = *(char *const *)af__config_cfield(src, k);
            char **slot = (char **)af__config_field(dst, k);
            if (s && !(*slot = af__strdup(s)))
                goto fail;
        } else if (k->info.type == AF_CFG_MAP || k->info.type == AF_CFG_KV_LIST) {
            size_t sn, *dn;
            const af_config_kv *from = af__config_kv_get(src, k, &sn);
            af_config_kv **to = af__config_kv_slot(dst, k, &dn);
            for (size_t j = 0; j < sn; j++)
                if (af__config_kv_put(to, dn, from[j].key, from[j].value, false, false) != 0)
                    goto fail;
        } else if (k->info.type == AF_CFG_LIST) {
            size_t sn, *dn;
            char *const *from = af__config_list_get(src, k, &sn);
            char ***to = af__config_list_slot(dst, k, &dn);
            if (sn && !(*to = calloc(sn, sizeof **to)))
                goto fail;
            /* Counted as they are made, so a failure frees exactly what exists. */
            for (; *dn < sn; (*dn)++)
                if (!((*to)[*dn] = af__strdup(from[*dn])))
                    goto fail;
        } else if (k->info.type == AF_CFG_MODELS) {
            if (af__config_models_copy(src->serving.models, src->serving.n_models,
                                       &dst->serving.models) != 0)
                goto fail;
            dst->serving.n_models = src->serving.n_models;
        }
    }
    return 0;
fail:
    af_tracing_config_clear(dst);
    return -ENOMEM;
}

/* ---------------------------------------------------------------------------------------- */
/* Cross-key checks.                                                                         */

/* server.tls: the certificate and its key go together, and client certificates can only be
 * asked for over TLS. Checked here so that `config check` reports it, not only a refused
 * start. */
static int validate_server(const af_tracing_config *cfg, af_config_diag *diag, const char *src)
{
    int errors = 0;
    const char *cert = cfg->server.tls.cert_file, *key = cfg->server.tls.key_file;
    if ((cert != NULL) != (key != NULL)) {
        errors++;
        if (af__diag_add(diag, AF_DIAG_ERROR, src, 0, 0,
                         cert ? "server.tls.cert_file" : "server.tls.key_file",
                         "HTTPS needs both tls.cert_file and tls.key_file") != 0)
            return -ENOMEM;
    }
    if (cfg->server.tls.client_ca_file && !cert) {
        errors++;
        if (af__diag_add(diag, AF_DIAG_ERROR, src, 0, 0, "server.tls.client_ca_file",
                         "client certificates need HTTPS: set tls.cert_file and tls.key_file") != 0)
            return -ENOMEM;
    }
    return errors;
}

int af__config_validate(const af_tracing_config *cfg, af_config_diag *diag, const char *src)
{
    int errors = 0;
    const char *cert = cfg->tracing.exporters.otlp_http.client_cert;
    const char *key = cfg->tracing.exporters.otlp_http.client_key;
    if ((cert != NULL) != (key != NULL)) {
        errors++;
        if (af__diag_add(diag, AF_DIAG_ERROR, src, 0, 0,
                         cert ? "tracing.exporters.otlp_http.client_cert"
                              : "tracing.exporters.otlp_http.client_key",
                         "mutual TLS needs both client_cert and client_key") != 0)
            return -ENOMEM;
    }
    if (cfg->performance.max_export_batch_size > cfg->performance.max_queue_size &&
        af__diag_add(diag, AF_DIAG_WARNING, src, 0, 0, "performance.max_export_batch_size",
                     "%u is larger than performance.max_queue_size (%u); batches will hold at "
                     "most %u spans",
                     cfg->performance.max_export_batch_size, cfg->performance.max_queue_size,
                     cfg->performance.max_queue_size) != 0)
        return -ENOMEM;
    bool any = cfg->tracing.exporters.jaeger.enabled || cfg->tracing.exporters.otlp_http.enabled ||
               cfg->tracing.exporters.stdout_.enabled;
    if (cfg->tracing.enabled && !any &&
        af__diag_add(diag, AF_DIAG_INFO, src, 0, 0, "tracing.exporters",
                     "no exporter is enabled; spans only reach exporters added in code (such "
                     "as the daemon's trace store)") != 0)
        return -ENOMEM;
    int server_errors = validate_server(cfg, diag, src);
    return server_errors < 0 ? server_errors : errors + server_errors;
}

int af_tracing_config_validate(const af_tracing_config *cfg, af_config_diag *diag)
{
    int rc = af__config_validate(cfg, diag, NULL);
    if (rc < 0)
        return rc;
    return rc ? AF_EPARSE : 0;
}
