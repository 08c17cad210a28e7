/*
 * What the daemon subcommands (serve, agent) share on their command line: the flag table that
 * overrides configuration keys, and the signal mask their main threads wait on.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agentaflow/log.h"
#include "app.h"

int app_parse_flags(int argc, char **argv, const char *cmd, app_flag *flags, size_t n_flags,
                    app_cli *cli, void (*help)(FILE *f))
{
    memset(cli, 0, sizeof(*cli));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc, known = false;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 1;
        }
        if (!strcmp(a, "--config") && has_val) {
            cli->config = argv[++i];
            continue;
        }
        if (!strcmp(a, "--port-file") && has_val) {
            cli->port_file = argv[++i];
            continue;
        }
        for (size_t f = 0; f < n_flags && !known; f++) {
            if (strcmp(a, flags[f].flag) != 0)
                continue;
            if (flags[f].set) { /* a switch */
                flags[f].value = flags[f].set;
                known = true;
            } else if (has_val) {
                flags[f].value = argv[++i];
                known = true;
            }
        }
        if (!known) {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n\n", cmd, a);
            help(stderr);
            return 2;
        }
    }
    return 0;
}

int app_apply_flags(af_tracing_config *cfg, const char *cmd, const app_flag *flags, size_t n_flags)
{
    for (size_t i = 0; i < n_flags; i++)
        if (flags[i].value &&
            app_set_flag(cfg, cmd, flags[i].flag, flags[i].key, flags[i].value, stderr) != 0)
            return 2;
    return 0;
}

void app_block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    af_log_level_from_env();
}

void app_write_port_file(const char *path, af_server *srv, const char *cmd)
{
    if (!path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    /* Written whole, then renamed: a reader never sees half a line. */
    bool ok = f && fprintf(f, "%d %d\n", af_server_port(srv), af_server_metrics_port(srv)) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0)
        fprintf(stderr, "%s: cannot write %s\n", cmd, path);
}
