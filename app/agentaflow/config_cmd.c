/*
 * agentaflow config check FILE: every diagnostic, then the effective configuration (file,
 * then environment) with secrets redacted. Exit 0 when valid, 1 when there are errors.
 * agentaflow config docs: docs/configuration.md from the key table, on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static void config_help(FILE *f)
{
    fprintf(f, "usage: agentaflow config check FILE\n"
               "       agentaflow config docs\n\n"
               "check: loads FILE (tracing keys and the server: section), applies the OTEL_* and\n"
               "AGENTAFLOW_* environment, and prints either every error (exit 1) or the\n"
               "effective settings with secrets redacted (exit 0).\n"
               "docs: prints the reference of every key (docs/configuration.md) as Markdown.\n");
}

static int check(const char *path)
{
    af_tracing_config cfg;
    int bad = app_load_config(path, &cfg, stdout);
    if (bad) {
        printf("%s: invalid configuration\n", path);
        af_tracing_config_clear(&cfg);
        return 1;
    }
    char *text = NULL;
    int rc = af_config_dump_text(&cfg, true, &text);
    af_tracing_config_clear(&cfg);
    if (rc != 0) {
        fprintf(stderr, "agentaflow: out of memory\n");
        return 1;
    }
    printf("%s: valid\n%s", path, text);
    free(text);
    return 0;
}

static int docs(void)
{
    char *md = NULL;
    if (af_config_dump_docs(&md) != 0) {
        fprintf(stderr, "agentaflow: out of memory\n");
        return 1;
    }
    fputs(md, stdout);
    free(md);
    return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        config_help(stdout);
        return 0;
    }
    if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        config_help(stdout);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "check"))
        return check(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "docs"))
        return docs();
    config_help(stderr);
    return 2;
}
