/*
 * docs/configuration.md, written from the key table so that the documentation cannot drift
 * from what the loader accepts: a test regenerates it and fails when the committed file
 * differs. The same text, as roff, is the agentaflow.yaml(5) man page of the Debian package.
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
     "(`--port`, `--metrics-port`, `--bind`, `--gpu-backend`, `--no-load-generator`, "
     "`--log-format`) override "
     "the file and the environment."},
    {"cluster", "cluster",
     "`agentaflow serve --cluster`: the fleet's scheduler. Agents report their node's GPUs; "
     "kube-scheduler calls the extender (POST /scheduler/filter, /scheduler/prioritize, "
     "/scheduler/bind)."},
    {"agent", "agent",
     "`agentaflow agent`: one per GPU node. It collects its GPUs, serves /health and "
     "Prometheus, and reports to the cluster scheduler every report_interval."},
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

/* The introduction's paragraphs, in Markdown (code spans only, which the man page makes bold). */
static const char *const intro[] = {
    "One YAML file holds every key below (`agentaflow serve --config FILE`; "
    "`agentaflow config check FILE` prints the effective values, secrets redacted, and "
    "`GET /api/v1/config` returns them as JSON). Dotted names are nested mappings: "
    "`server.tls.cert_file` is `cert_file` under `tls:` under `server:`.",
    "Precedence, lowest to highest: the defaults below, the file, the environment, "
    "command-line flags. An empty environment variable counts as unset.",
    "Durations are Go-style strings (`500ms`, `30s`, `1m30s`, `2h`; units ns, us, ms, s, "
    "m, h) or a plain integer meaning milliseconds. An unknown key is a warning with a "
    "suggestion (`server.prot: unknown key (ignored); did you mean \"server.port\"?`); a bad "
    "value is an error naming the file, line, column and key, and leaves the default in "
    "place. Secret values are never shown.",
};

/* Calls put(b, name, name_len, title, text) for each section, in the order the table first
 * uses them. */
static void for_each_section(af_buf *b, void (*put)(af_buf *, const char *, size_t, const char *,
                                                    const char *))
{
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
        put(b, key, len, title, text);
    }
}

int af_config_dump_docs(char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "# Configuration\n\n"
                     "<!-- Generated from the key table (src/config/keys.c) by `agentaflow config "
                     "docs`; do not edit. Regenerate with `make docs`. -->\n");
    for (size_t i = 0; i < sizeof intro / sizeof intro[0]; i++)
        af__buf_printf(&b, "\n%s\n", intro[i]);
    for_each_section(&b, put_section);
    return af__buf_finish(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* roff (man(7)).                                                                            */

/* Text for a roff line: backslashes escaped, `code` in bold, a leading '.' or '\'' made
 * literal (troff would take it for a request). The caller starts a new line first. */
static void put_roff(af_buf *b, const char *s)
{
    bool code = false;
    if (*s == '.' || *s == '\'')
        af__buf_puts(b, "\\&");
    for (; *s; s++) {
        if (*s == '\\') {
            af__buf_puts(b, "\\e");
        } else if (*s == '`') {
            af__buf_puts(b, code ? "\\fR" : "\\fB");
            code = !code;
        } else if (*s == '-') {
            /* A real minus/hyphen-minus in options and names, as man-pages(7) asks. */
            af__buf_puts(b, "\\-");
        } else {
            af__buf_putc(b, *s);
        }
    }
    if (code)
        af__buf_puts(b, "\\fR");
}

static void put_man_section(af_buf *b, const char *name, size_t name_len, const char *title,
                            const char *text)
{
    af__buf_puts(b, ".SS ");
    put_roff(b, title);
    af__buf_putc(b, '\n');
    if (text) {
        put_roff(b, text);
        af__buf_putc(b, '\n');
    }
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af_config_key_info *k = &af__config_keys[i].info;
        if (section_len(k->key) != name_len || strncmp(k->key, name, name_len) != 0)
            continue;
        char bounds[256];
        af_config_key_bounds(k, bounds, sizeof bounds);
        af__buf_puts(b, ".TP\n.B ");
        put_roff(b, k->key);
        af__buf_printf(b, "\n%s%s", af_config_type_name(k->type), k->secret ? ", secret" : "");
        af__buf_puts(b, "; default ");
        if (k->default_text[0]) {
            af__buf_puts(b, "\\fB");
            put_roff(b, k->default_text);
            af__buf_puts(b, "\\fR");
        } else {
            af__buf_puts(b, "unset");
        }
        if (bounds[0]) {
            af__buf_puts(b, "; ");
            put_roff(b, bounds);
        }
        if (k->env) {
            af__buf_puts(b, "; environment \\fB");
            put_roff(b, k->env);
            af__buf_puts(b, "\\fR");
        }
        af__buf_puts(b, ".\n");
        put_roff(b, k->help);
        af__buf_putc(b, '\n');
    }
}

int af_config_dump_docs_man(char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    af__buf_printf(&b,
                   ".\\\" Generated from the key table (src/config/keys.c) by `agentaflow config "
                   "docs --format man`.\n"
                   ".TH AGENTAFLOW.YAML 5 \"\" \"agentaflow %s\" \"File Formats\"\n"
                   ".SH NAME\n"
                   "agentaflow.yaml \\- configuration of the agentaflow daemon and tracing SDK\n"
                   ".SH SYNOPSIS\n"
                   ".I /etc/agentaflow/agentaflow.yaml\n"
                   ".SH DESCRIPTION\n",
                   AF_VERSION_STRING);
    for (size_t i = 0; i < sizeof intro / sizeof intro[0]; i++) {
        if (i)
            af__buf_puts(&b, ".PP\n");
        put_roff(&b, intro[i]);
        af__buf_putc(&b, '\n');
    }
    af__buf_puts(&b, ".PP\nUnder systemd (agentaflow.service) the file is read from\n"
                     ".I $CONFIGURATION_DIRECTORY/agentaflow.yaml\n"
                     "when no \\fB\\-\\-config\\fR is given.\n"
                     ".SH KEYS\n");
    for_each_section(&b, put_man_section);
    af__buf_puts(&b, ".SH SEE ALSO\n.BR agentaflow (1)\n");
    return af__buf_finish(&b, out);
}
