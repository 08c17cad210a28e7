/*
 * agentaflow db: the durable state from outside the daemon. Every subcommand opens the
 * database read-only (SQLite WAL readers never block the daemon's writer), so each works
 * while the daemon runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"

static void db_help(FILE *f)
{
    fprintf(f, "usage: agentaflow db <check|backup FILE|export --costs --format csv|json> "
               "[--data-dir DIR] [--config FILE]\n\n"
               "  check                      integrity check of the database\n"
               "  backup FILE                consistent copy of the live database to FILE\n"
               "                             (SQLite online backup; the daemon keeps running)\n"
               "  export --costs --format F  the cost ledger to stdout, oldest first, as csv or\n"
               "                             json (one object per line)\n\n"
               "The data directory is --data-dir, else server.data_dir of --config, else\n"
               "AGENTAFLOW_DATA_DIR, else $STATE_DIRECTORY, else ./data.\n"
               "Exit status: 0 ok, 1 failure (damaged database, unreadable file), 2 bad usage.\n");
}

/* CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void rfc3339(uint64_t ns, char out[40])
{
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%09" PRIu64 "Z", ns % 1000000000u);
}

static int put_csv(const af_store_cost *c, void *user)
{
    FILE *f = user;
    char ts[40];
    rfc3339(c->timestamp_ns, ts);
    csv_field(f, c->id);
    fputc(',', f);
    csv_field(f, c->operation);
    fputc(',', f);
    csv_field(f, c->model_id);
    /* %.17g: the exact double that was recorded. */
    fprintf(f, ",%" PRIu64 ",%" PRId64 ",%.17g,%.17g,", c->duration_ns, c->tokens, c->gpu_hours,
            c->cost);
    csv_field(f, c->currency);
    fprintf(f, ",%s,%" PRIu64 "\n", ts, c->timestamp_ns);
    return ferror(f) ? -EIO : 0;
}

static int put_json(const af_store_cost *c, void *user)
{
    FILE *f = user;
    char ts[40];
    rfc3339(c->timestamp_ns, ts);
    fputs("{\"id\":", f);
    json_str(f, c->id);
    fputs(",\"operation\":", f);
    json_str(f, c->operation);
    fputs(",\"model_id\":", f);
    json_str(f, c->model_id);
    fprintf(f,
            ",\"duration_ns\":%" PRIu64 ",\"tokens_used\":%" PRId64
            ",\"gpu_hours\":%.17g,\"cost\":%.17g,\"currency\":",
            c->duration_ns, c->tokens, c->gpu_hours, c->cost);
    json_str(f, c->currency);
    fprintf(f, ",\"timestamp\":\"%s\",\"timestamp_ns\":%" PRIu64 "}\n", ts, c->timestamp_ns);
    return ferror(f) ? -EIO : 0;
}

int cmd_db(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL, *dir = NULL, *config = NULL, *file = NULL,
               *format = NULL;
    bool costs = false;
    if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        db_help(sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--data-dir") && has_val)
            dir = argv[++i];
        else if (!strcmp(a, "--config") && has_val)
            config = argv[++i];
        else if (!strcmp(a, "--format") && has_val)
            format = argv[++i];
        else if (!strcmp(a, "--costs"))
            costs = true;
        else if (!strcmp(sub, "backup") && !file && a[0] != '-')
            file = a;
        else {
            fprintf(stderr, "agentaflow db: unknown or incomplete option '%s'\n\n", a);
            db_help(stderr);
            return 2;
        }
    }
    bool check = !strcmp(sub, "check"), backup = !strcmp(sub, "backup"),
         export = !strcmp(sub, "export");
    if ((!check && !backup && !export) || (backup && !file) ||
        (export &&
         (!costs || !format || (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)))) {
        db_help(stderr);
        return 2;
    }
    af_tracing_config cfg;
    if (app_load_config(config, &cfg, stderr) != 0) {
        af_tracing_config_clear(&cfg);
        return 2;
    }
    char *d = af_state_resolve_dir(dir ? dir : cfg.server.data_dir);
    af_tracing_config_clear(&cfg);
    if (!d) {
        fprintf(stderr, "agentaflow db: out of memory\n");
        return 1;
    }
    char path[4200], err[1024] = "";
    snprintf(path, sizeof(path), "%s/" AF_STORE_DB_FILE, d);
    free(d);
    int rc;
    if (check) {
        rc = af_store_sqlite_check(path, err, sizeof(err));
        fprintf(rc ? stderr : stdout, "%s\n", err);
    } else if (backup) {
        rc = af_store_sqlite_backup(path, file, err, sizeof(err));
        if (rc == 0)
            printf("backed up %s to %s\n", path, file);
        else
            fprintf(stderr, "agentaflow db backup: %s\n", err);
    } else {
        if (!strcmp(format, "csv"))
            printf("id,operation,model_id,duration_ns,tokens_used,gpu_hours,cost,currency,"
                   "timestamp,timestamp_ns\n");
        rc = af_store_sqlite_each_cost(path, !strcmp(format, "csv") ? put_csv : put_json, stdout,
                                       err, sizeof(err));
        if (fflush(stdout) != 0 && rc == 0)
            rc = -EIO;
        if (rc != 0)
            fprintf(stderr, "agentaflow db export: %s\n", err[0] ? err : af_strerror(rc));
    }
    return rc ? 1 : 0;
}
