/*
 * docs/configuration.md, written from the key table so that the documentation cannot drift
 * from what the loader accepts: a test regenerates it and fails when the committed file
 * differs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config_int.h"
#include "util/buf.h"

/* What each section is for (by its first dotted segment; "" = keys without one); a section
 * without a line here still gets its table, titled by its name. */
static const struct {
    const char *name, *title, *text;
} sections[] = {
    {"", "Top level", "The service's identity, attached to every span as resource attributes."},
    {"tracing", "tracing", "The tracing SDK: the master switch, sampling and the exporters."},
    {"components", "components",
     "Which operations of each component are traced. The noisy ones are off by default."},
    {"performance", "performance", "The batch span processor in front of every exporter."},
    {"server", "server",
     "The `agentaflow` daemon: listeners, authentication, TLS, request bounds, the trace store "
     "and the GPU backend. The tracing SDK ignores this section. `agentaflow serve` flags "
     "(`--port`, `--metrics-port`, `--bind`, `--gpu-backend`, `--no-load-generator`) override "
     "the file and the environment."},
};

/* Markdown table cells: a '|' would end the cell. */
static void put_cell(af_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            af__buf_putc(b, '\\');
        af__buf_putc(b, *s);
    }
}

/* Each comma-separated variable in its own code span. */
static void put_env(af_buf *b, const char *env)
{
    while (env && *env) {
        size_t len = strcspn(env, ",");
        af__buf_printf(b, "`%.*s`", (int)len, env);
        env += len;
        if (*env == ',') {
            af__buf_puts(b, ", ");
            env++;
            while (*env == ' ')
                env++;
        }
    }
}

static size_t section_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : 0;
}

static void put_row(af_buf *b, const af__config_key *k)
{
    char bounds[256];
    af_config_key_bounds(&k->info, bounds, sizeof bounds);
    af__buf_printf(b, "| `%s` | %s%s | ", k->info.key, af_config_type_name(k->info.type),
                   k->info.secret ? ", secret" : "");
    if (k->info.default_text[0]) {
        af__buf_putc(b, '`');
        put_cell(b, k->info.default_text);
        af__buf_putc(b, '`');
    } else {
        af__buf_puts(b, "unset");
    }
    af__buf_puts(b, " | ");
    put_cell(b, bounds);
    af__buf_puts(b, " | ");
    put_env(b, k->info.env);
    af__buf_puts(b, " | ");
    put_cell(b, k->info.help);
    af__buf_puts(b, " |\n");
}

static void put_section(af_buf *b, const char *name, size_t name_len, const char *title,
                        const char *text)
{
    af__buf_printf(b, "\n## %s\n\n", title);
    if (text)
        af__buf_printf(b, "%s\n\n", text);
    af__buf_puts(b, "| key | type | default | bounds | environment | description |\n"
                    "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (section_len(k->info.key) == name_len && strncmp(k->info.key, name, name_len) == 0)
            put_row(b, k);
    }
}

/* True when no earlier row of the table is in the section of row i. */
static bool first_of_section(size_t i)
{
    const char *key = af__config_keys[i].info.key;
    size_t len = section_len(key);
    for (size_t j = 0; j < i; j++) {
        const char *other = af__config_keys[j].info.key;
        if (section_len(other) == len && strncmp(other, key, len) == 0)
            return false;
    }
    return true;
}

int af_config_dump_docs(char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(
        &b,
        "# Configuration\n\n"
        "<!-- Generated from the key table (src/config/keys.c) by `agentaflow config docs`; "
        "do not edit. Regenerate with `make docs`. -->\n\n"
        "One YAML file holds every key below (`agentaflow serve --config FILE`; "
        "`agentaflow config check FILE` prints the effective values, secrets redacted, and "
        "`GET /api/v1/config` returns them as JSON). Dotted names are nested mappings: "
        "`server.tls.cert_file` is `cert_file` under `tls:` under `server:`.\n\n"
        "Precedence, lowest to highest: the defaults below, the file, the environment, "
        "command-line flags. An empty environment variable counts as unset.\n\n"
        "Durations are Go-style strings (`500ms`, `30s`, `1m30s`, `2h`; units ns, us, ms, s, "
        "m, h) or a plain integer meaning milliseconds. An unknown key is a warning with a "
        "suggestion (`server.prot: unknown key (ignored); did you mean \"server.port\"?`); a bad "
        "value is an error naming the file, line, column and key, and leaves the default in "
        "place. Secret values are never shown.\n");
    /* Sections in the order the table first uses them. */
    for (size_t i = 0; i < af__config_nkeys; i++) {
        if (!first_of_section(i))
            continue;
        const char *key = af__config_keys[i].info.key;
        size_t len = section_len(key);
        char title[64];
        snprintf(title, sizeof title, "%.*s", (int)len, key);
        const char *text = NULL;
        for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++) {
            if (strlen(sections[j].name) == len && strncmp(sections[j].name, key, len) == 0) {
                snprintf(title, sizeof title, "%s", sections[j].title);
                text = sections[j].text;
            }
        }
        put_section(&b, key, len, title, text);
    }
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}
