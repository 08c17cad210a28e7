/*
 * agentaflow config check FILE: every diagnostic, then the effective configuration (file,
 * then environment) with secrets redacted. Exit 0 when valid, 1 when there are errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static void config_help(FILE *f)
{
    fprintf(f, "usage: agentaflow config check FILE\n\n"
               "Loads FILE (the tracing-config.yaml schema plus an optional server: section),\n"
               "applies the OTEL_* and AGENTAFLOW_* environment, and prints either every error\n"
               "(exit 1) or the effective settings with secrets redacted (exit 0).\n");
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        config_help(stdout);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "check") &&
        (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        config_help(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        config_help(stderr);
        return 2;
    }
    af_tracing_config cfg;
    app_settings st;
    int bad = app_load_config(argv[2], &cfg, &st, stdout);
    if (bad) {
        printf("%s: invalid configuration\n", argv[2]);
        af_tracing_config_free(&cfg);
        return 1;
    }
    char *text = NULL;
    if (af_config_dump_text(&cfg, true, &text) != 0) {
        af_tracing_config_free(&cfg);
        fprintf(stderr, "agentaflow: out of memory\n");
        return 1;
    }
    printf("%s: valid\n%s", argv[2], text);
    app_settings_print(&st, stdout);
    free(text);
    af_tracing_config_free(&cfg);
    return 0;
}
