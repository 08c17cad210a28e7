/*
 * agentaflow: the daemon and its CLI.
 *
 *   agentaflow serve [--config FILE] [--no-load-generator] [--port N] [--metrics-port N] ...
 *   agentaflow agent --scheduler URL [--node-name N] [--config FILE] ...
 *   agentaflow demo [--config FILE]
 *   agentaflow config check FILE
 *   agentaflow config docs [--format markdown|man|yaml]
 *   agentaflow version
 *
 * Exit codes: 0 success, 1 failure (config check found errors, runtime failure), 2 bad usage
 * or a bad configuration given to serve/demo.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: agentaflow <command> [options]\n\n"
               "commands:\n"
               "  serve          run the daemon: dashboard, JSON API and WebSocket on :9000,\n"
               "                 Prometheus on :9001, GPU metrics, scheduler, model serving\n"
               "  agent          per-node agent: GPU metrics, /health and Prometheus, reporting\n"
               "                 to the cluster scheduler (serve --cluster)\n"
               "  demo           run the tracing demo once and say where the spans went\n"
               "  config check   validate a config file and print the effective settings\n"
               "  config docs    print the reference of every configuration key (Markdown,\n"
               "                 or --format man / yaml)\n"
               "  db             check, back up or export the durable state (data directory)\n"
               "  version        print version information\n\n"
               "'agentaflow <command> --help' describes each command.\n");
}

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: agentaflow version\n\nPrints the version of agentaflow and of the "
               "libraries it was built with.\n");
        return 0;
    }
    printf("agentaflow %s\n", AF_VERSION_STRING);
    printf("jansson %s\n", JANSSON_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version"))
        return cmd_version(1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "agent"))
        return cmd_agent(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "config"))
        return cmd_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "version"))
        return cmd_version(argc - 1, argv + 1);
    if (!strcmp(cmd, "db"))
        return cmd_db(argc - 1, argv + 1);
    fprintf(stderr, "agentaflow: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
