/*
 * libFuzzer target: arbitrary bytes as a tracing-config.yaml document through the
 * load-from-string API, then the dumps of whatever was accepted. Checks for crashes, leaks
 * and hangs (aliases, deep nesting, huge mappings), and that every accepted config dumps.
 */
#include <stdint.h>
#include <stdlib.h>

#include "agentaflow/config.h"
#include "agentaflow/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_log_set_level(AF_LOG_OFF);
    af_tracing_config cfg;
    if (af_tracing_config_init(&cfg) != 0)
        return 0;
    af_config_diag diag;
    af_config_diag_init(&diag);
    af_tracing_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &diag);
    if (diag.n_entries > AF_CONFIG_DIAG_MAX)
        abort();
    char *out = NULL;
    if (af_config_dump_json(&cfg, true, &out) == 0)
        free(out);
    if (af_config_dump_text(&cfg, true, &out) == 0)
        free(out);
    char *msgs = af_config_diag_format(&diag);
    free(msgs);
    af_config_diag_free(&diag);
    af_tracing_config_clear(&cfg);
    return 0;
}
