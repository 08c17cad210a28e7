/*
 * integration.durability: the daemon with a data directory.
 *
 *   crash rounds   cost POSTs and workload submissions over several keep-alive connections,
 *                  the daemon killed with SIGKILL at a random moment, 10 rounds; after each
 *                  restart every acknowledged write is in the database exactly once and in
 *                  memory, and no write appears twice.
 *   bad conditions a second daemon on the same directory, an unusable directory, a damaged
 *                  database (refused, never written), a full disk (RLIMIT_FSIZE set on the
 *                  running daemon: 503 storage_unavailable, reads keep working, writes come
 *                  back when the limit is lifted).
 *
 * Every write sends Content-Type: application/json. Nothing sleeps blindly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agentaflow/store.h"
#include "harness.h"

#ifdef AF_SANITIZER
/* Under ASan or TSan the daemon runs many times slower: fewer rounds and writes, the same
 * checks after every kill. */
#define ROUNDS 3
#define ROUND_WRITES 300
#define MIN_TOTAL 900
#else
#define ROUNDS 10
#define ROUND_WRITES 2000 /* 2000 to 3000 acknowledged writes a round */
#define MIN_TOTAL 20000
#endif
#define THREADS 4
#define MAX_ACKED 8192 /* per thread per round */

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

static char datadir[300];

/* Every daemon started, so a failed test (cmocka jumps out of it) leaves none running. */
static pid_t started[64];
static size_t n_started;

static void start_persistent(daemon_t *d, const char *dir)
{
    const char *extra[] = {"--data-dir", dir, "--no-load-generator", NULL};
    daemon_start(d, NULL, extra, NULL);
    if (n_started < sizeof(started) / sizeof(started[0]))
        started[n_started++] = d->pid;
}

static void kill_leftovers(void)
{
    for (size_t i = 0; i < n_started; i++)
        if (waitpid(started[i], NULL, WNOHANG) == 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
}

static void kill9(daemon_t *d)
{
    kill(d->pid, SIGKILL);
    int st;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
}

/* One client connection sending writes until told to stop or the daemon dies. */
typedef struct client {
    int port, round, index;
    atomic_int *acked_total;
    atomic_bool *stop;
    int n_costs, n_wls; /* acknowledged */
    char (*cost_ids)[32];
    char (*wl_ids)[32];
} client;

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static void *client_main(void *arg)
{
    client *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    char url_c[128], url_w[128], body[256], id[32];
    snprintf(url_c, sizeof(url_c), "http://127.0.0.1:%d/api/v1/costs", c->port);
    snprintf(url_w, sizeof(url_w), "http://127.0.0.1:%d/api/v1/workloads", c->port);
    for (int i = 0; !atomic_load(c->stop) && c->n_costs < MAX_ACKED && c->n_wls < MAX_ACKED; i++) {
        bool cost = i % 2 == 0;
        snprintf(id, sizeof(id), "%c-%d-%d-%d", cost ? 'c' : 'w', c->round, c->index, i);
        if (cost)
            snprintf(body, sizeof(body),
                     "{\"id\":\"%s\",\"operation\":\"inference\",\"model_id\":\"m\","
                     "\"cost\":0.125,\"tokens_used\":3}",
                     id);
        else
            snprintf(body, sizeof(body), "{\"id\":\"%s\",\"memory_required_mb\":1}", id);
        curl_easy_setopt(h, CURLOPT_URL, cost ? url_c : url_w);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        long status = 0;
        if (curl_easy_perform(h) != CURLE_OK)
            break; /* the daemon is gone: this write was not acknowledged */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status != 201)
            continue;
        if (cost)
            snprintf(c->cost_ids[c->n_costs++], 32, "%s", id);
        else
            snprintf(c->wl_ids[c->n_wls++], 32, "%s", id);
        atomic_fetch_add(c->acked_total, 1);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

/* How many rows of `table` have this id. */
static int count_id(sqlite3 *db, const char *table, const char *id)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE id = ?1", table);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static long long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static sqlite3 *reopen(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void test_crash_rounds(void **state)
{
    (void)state;
    snprintf(datadir, sizeof(datadir), "%s/crash", g_tmp);
    char dbp[400];
    snprintf(dbp, sizeof(dbp), "%s/" AF_STORE_DB_FILE, datadir);
    srand((unsigned)getpid());
    client cl[THREADS];
    for (int t = 0; t < THREADS; t++) {
        cl[t].cost_ids = calloc(MAX_ACKED, 32);
        cl[t].wl_ids = calloc(MAX_ACKED, 32);
    }
    long long acked_costs = 0, total = 0;
    uint64_t t0 = now_ms();
    for (int round = 0; round < ROUNDS; round++) {
        daemon_t d;
        start_persistent(&d, datadir);
        atomic_int acked = 0;
        atomic_bool stop = false;
        pthread_t th[THREADS];
        for (int t = 0; t < THREADS; t++) {
            cl[t] = (client){d.port, round, t, &acked, &stop, 0, 0, cl[t].cost_ids, cl[t].wl_ids};
            pthread_create(&th[t], NULL, client_main, &cl[t]);
        }
        /* A random moment once enough writes were acknowledged. */
        int target = ROUND_WRITES + rand() % (ROUND_WRITES / 2);
        uint64_t deadline = now_ms() + 60000;
        while (atomic_load(&acked) < target && now_ms() < deadline)
            pause_ms(1);
        kill9(&d);
        atomic_store(&stop, true);
        for (int t = 0; t < THREADS; t++)
            pthread_join(th[t], NULL);
        assert_true(atomic_load(&acked) >= target);
        total += atomic_load(&acked);

        /* Restart: everything acknowledged is there, exactly once, on disk and in memory. */
        start_persistent(&d, datadir);
        sqlite3 *db = NULL, *db2;
        assert_int_equal(sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < cl[t].n_costs; i++)
                if (count_id(db, "costs", cl[t].cost_ids[i]) != 1)
                    fail_msg("round %d: acknowledged cost %s is there %d times", round,
                             cl[t].cost_ids[i], count_id(db, "costs", cl[t].cost_ids[i]));
            for (int i = 0; i < cl[t].n_wls; i++)
                if (count_id(db, "workloads", cl[t].wl_ids[i]) != 1)
                    fail_msg("round %d: acknowledged workload %s is missing", round,
                             cl[t].wl_ids[i]);
            acked_costs += cl[t].n_costs;
        }
        /* No write twice, acknowledged or not. */
        assert_int_equal(scalar(db, "SELECT count(*) - count(DISTINCT id) FROM costs"), 0);
        long long rows = scalar(db, "SELECT count(*) FROM costs");
        assert_true(rows >= acked_costs);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        /* Memory: the ledger holds every saved entry of the test once (the daemon prices GPU
         * usage into the ledger too, so only the test's operation is counted). */
        long long saved =
            scalar(db2 = reopen(dbp), "SELECT count(*) FROM costs WHERE operation = 'inference'");
        sqlite3_close(db2);
        json_t *h = get_json(d.port, "/api/v1/costs/summary", 200);
        json_t *inf = json_object_get(json_object_get(h, "by_operation"), "inference");
        assert_int_equal(json_integer_value(json_object_get(inf, "count")), saved);
        json_decref(h);
        for (int t = 0; t < THREADS; t++) {
            if (!cl[t].n_wls)
                continue;
            char path[128];
            snprintf(path, sizeof(path), "/api/v1/workloads/%s", cl[t].wl_ids[cl[t].n_wls - 1]);
            json_decref(get_json(d.port, path, 200));
        }
        if (round == ROUNDS - 1)
            assert_int_equal(daemon_stop(&d), 0);
        else
            kill9(&d);
    }
    printf("durability: %lld acknowledged writes over %d SIGKILL rounds in %.1f s\n", total, ROUNDS,
           (double)(now_ms() - t0) / 1000.0);
    assert_true(total >= MIN_TOTAL);
    for (int t = 0; t < THREADS; t++) {
        free(cl[t].cost_ids);
        free(cl[t].wl_ids);
    }
}

/* *out is the harness's static buffer. */
static int run_serve(const char *dir, char **out)
{
    const char *args[] = {
        g_bin, "serve",         "--port",    "0", "--metrics-port", "-1", "--data-dir",
        dir,   "--gpu-backend", "simulated", NULL};
    return run_cmd(args, NULL, out);
}

static void test_second_daemon_refused(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/second", g_tmp);
    daemon_t d;
    start_persistent(&d, dir);
    char *out = NULL;
    assert_int_equal(run_serve(dir, &out), 2);
    assert_non_null(strstr(out, "in use by another agentaflow process"));
    assert_non_null(strstr(out, dir));
    /* The first one is unharmed. */
    resp r = http(d.port, "POST", "/api/v1/costs", "{\"operation\":\"x\",\"cost\":1}", json_hdr);
    assert_int_equal(r.status, 201);
    free(r.body);
    assert_int_equal(daemon_stop(&d), 0);
}

static void test_unusable_dir(void **state)
{
    (void)state;
    char file[400], dir[500];
    snprintf(file, sizeof(file), "%s/plain-file", g_tmp);
    write_file(file, "x");
    snprintf(dir, sizeof(dir), "%s/data", file);
    char *out = NULL;
    assert_int_equal(run_serve(dir, &out), 2);
    assert_non_null(strstr(out, dir));
    assert_non_null(strstr(out, "Not a directory"));
}

static void test_corrupt_db_refused(void **state)
{
    (void)state;
    char dir[400], db[500];
    snprintf(dir, sizeof(dir), "%s/corrupt", g_tmp);
    mkdir(dir, 0700);
    snprintf(db, sizeof(db), "%s/" AF_STORE_DB_FILE, dir);
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk) - 1; i++)
        junk[i] = (char)('a' + i % 23);
    junk[sizeof(junk) - 1] = '\0';
    write_file(db, junk);
    char *out = NULL;
    assert_int_equal(run_serve(dir, &out), 2);
    assert_non_null(strstr(out, db));
    assert_non_null(strstr(out, "left untouched"));
    FILE *f = fopen(db, "r");
    char back[4096] = "";
    assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(junk) - 1);
    fclose(f);
    assert_memory_equal(back, junk, sizeof(junk) - 1);
}

static long post_cost(int port, char *code, size_t cap)
{
    resp r =
        http(port, "POST", "/api/v1/costs", "{\"operation\":\"inference\",\"cost\":2}", json_hdr);
    code[0] = '\0';
    if (r.status >= 400) {
        json_t *j = json_of(&r);
        const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        snprintf(code, cap, "%s", c ? c : "");
        json_decref(j);
    }
    free(r.body);
    return r.status;
}

/* Entries of the test's operation in memory (the daemon adds GPU usage costs of its own). */
static long long inference_count(int port)
{
    json_t *h = get_json(port, "/api/v1/costs/summary", 200);
    json_t *inf = json_object_get(json_object_get(h, "by_operation"), "inference");
    long long n = json_integer_value(json_object_get(inf, "count"));
    json_decref(h);
    return n;
}

static void test_disk_full(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/full", g_tmp);
    daemon_t d;
    start_persistent(&d, dir);
    char code[64];
    assert_int_equal(post_cost(d.port, code, sizeof(code)), 201);
    /* The daemon's files may not grow past 4 KiB: the next WAL frame cannot be written. */
    struct rlimit lim = {4096, RLIM_INFINITY};
    assert_int_equal(prlimit(d.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    long st = 0;
    for (int i = 0; i < 50 && (st = post_cost(d.port, code, sizeof(code))) == 201; i++)
        ;
    assert_int_equal(st, 503);
    assert_string_equal(code, "storage_unavailable");
    /* Reads keep working, and health says why writes fail. */
    json_t *h = get_json(d.port, "/health", 200);
    json_t *s = json_object_get(json_object_get(h, "components"), "store");
    assert_string_equal(json_string_value(json_object_get(s, "status")), "degraded");
    assert_true(json_is_string(json_object_get(s, "last_error")));
    json_decref(h);
    long long n_before = inference_count(d.port);
    /* Space returns: writes succeed again, and the refused one left nothing in memory. */
    lim.rlim_cur = RLIM_INFINITY;
    assert_int_equal(prlimit(d.pid, RLIMIT_FSIZE, &lim, NULL), 0);
    assert_int_equal(post_cost(d.port, code, sizeof(code)), 201);
    assert_int_equal(inference_count(d.port), n_before + 1);
    assert_int_equal(daemon_stop(&d), 0);
    const char *args[] = {g_bin, "db", "check", "--data-dir", dir, NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(args, NULL, &out), 0);
}

/* The cost panel's 7-day history is read from the saved ledger: entries days old (written
 * to the database before the start, as an earlier run of the daemon would have) show up in
 * their day of /api/v1/costs/summary. */
static void test_history_after_restart(void **state)
{
    (void)state;
    char dir[400], db[500], err[512];
    snprintf(dir, sizeof(dir), "%s/history", g_tmp);
    mkdir(dir, 0700);
    snprintf(db, sizeof(db), "%s/" AF_STORE_DB_FILE, dir);
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = db;
    const af_store_backend_ops *ops;
    void *self;
    assert_int_equal(af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)), 0);
    uint64_t day = 86400ull * 1000000000ull, now = af_now_ns();
    uint64_t three_days_ago = (now / day - 3) * day + day / 2;
    assert_int_equal(ops->begin(self, err, sizeof(err)), 0);
    for (int i = 0; i < 40; i++) {
        af_store_op op = {.kind = AF_STORE_COST};
        op.u.cost = (af_store_cost){
            "old", "training", "m", "USD", 0, 0, 1.0, 2.5, three_days_ago + (uint64_t)i};
        assert_int_equal(ops->write(self, &op, err, sizeof(err)), 0);
    }
    assert_int_equal(ops->commit(self, err, sizeof(err)), 0);
    ops->close(self);
    daemon_t d;
    start_persistent(&d, dir);
    json_t *s = get_json(d.port, "/api/v1/costs/summary", 200);
    json_t *days = json_object_get(s, "daily_breakdown");
    assert_int_equal(json_array_size(days), 7);
    /* Oldest first: index 3 is three days ago. */
    assert_double_near(json_number_value(json_object_get(json_array_get(days, 3), "cost")), 100.0,
                       1e-6);
    json_decref(s);
    assert_int_equal(daemon_stop(&d), 0);
}

static long post(int port, const char *path, const char *body)
{
    resp r = http(port, "POST", path, body, json_hdr);
    free(r.body);
    return r.status;
}

static const char *workload_status(int port, const char *id, char *buf, size_t cap)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/workloads/%s", id);
    json_t *w = get_json(port, path, 200);
    snprintf(buf, cap, "%s", json_string_value(json_object_get(w, "status")));
    json_decref(w);
    return buf;
}

static bool alert_active(int port, const char *id)
{
    json_t *a = get_json(port, "/api/v1/alerts", 200);
    bool found = false;
    for (size_t i = 0; i < json_array_size(a); i++)
        found |= !strcmp(json_string_value(json_object_get(json_array_get(a, i), "id")), id);
    json_decref(a);
    return found;
}

/* Every write route's change survives a SIGKILL: an API GPU, a workload completed, one
 * cancelled, one still pending, an alert resolved. */
static void test_write_routes_survive(void **state)
{
    (void)state;
    char dir[400], db[500], err[512];
    snprintf(dir, sizeof(dir), "%s/routes", g_tmp);
    mkdir(dir, 0700);
    snprintf(db, sizeof(db), "%s/" AF_STORE_DB_FILE, dir);
    /* An alert raised by an earlier run. */
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = db;
    const af_store_backend_ops *ops;
    void *self;
    assert_int_equal(af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)), 0);
    assert_int_equal(ops->begin(self, err, sizeof(err)), 0);
    af_store_op op = {.kind = AF_STORE_ALERT};
    op.u.alert = (af_store_alert){900, "gpu-0", "temperature", 2,    "GPU gpu-0 temperature high",
                                  95,  90,      af_now_ns(),   false};
    assert_int_equal(ops->write(self, &op, err, sizeof(err)), 0);
    assert_int_equal(ops->commit(self, err, sizeof(err)), 0);
    ops->close(self);

    daemon_t d;
    start_persistent(&d, dir);
    assert_true(alert_active(d.port, "alert-900"));
    assert_int_equal(post(d.port, "/api/v1/gpus",
                          "{\"id\":\"api-gpu\",\"name\":\"A100\",\"memory_total_mb\":1000}"),
                     201);
    assert_int_equal(
        post(d.port, "/api/v1/workloads", "{\"id\":\"w-run\",\"memory_required_mb\":10}"), 201);
    assert_int_equal(
        post(d.port, "/api/v1/workloads", "{\"id\":\"w-pend\",\"memory_required_mb\":900000000}"),
        201);
    assert_int_equal(
        post(d.port, "/api/v1/workloads", "{\"id\":\"w-cancel\",\"memory_required_mb\":900000000}"),
        201);
    assert_int_equal(post(d.port, "/api/v1/workloads/w-cancel/cancel", "{}"), 200);
    assert_int_equal(post(d.port, "/api/v1/workloads/w-run/complete", "{}"), 200);
    assert_int_equal(post(d.port, "/api/v1/alerts/alert-900/resolve", "{}"), 200);
    /* Refused before the commit, in the scheduler's words. */
    assert_int_equal(post(d.port, "/api/v1/workloads/w-run/complete", "{}"), 400);
    assert_int_equal(post(d.port, "/api/v1/workloads/nope/cancel", "{}"), 404);
    kill9(&d);

    start_persistent(&d, dir);
    char st[32];
    assert_string_equal(workload_status(d.port, "w-run", st, sizeof(st)), "completed");
    assert_string_equal(workload_status(d.port, "w-cancel", st, sizeof(st)), "cancelled");
    assert_string_equal(workload_status(d.port, "w-pend", st, sizeof(st)), "pending");
    assert_false(alert_active(d.port, "alert-900"));
    json_t *g = get_json(d.port, "/api/v1/gpus", 200);
    char *gs = json_dumps(g, 0);
    assert_non_null(strstr(gs, "api-gpu"));
    free(gs);
    json_decref(g);
    /* The CLI beside the running daemon: an online backup that checks clean, and the ledger
     * exported with its exact amounts. */
    assert_int_equal(post(d.port, "/api/v1/costs",
                          "{\"id\":\"exact\",\"operation\":\"x\",\"cost\":0.30000000000000004}"),
                     201);
    char bak[500];
    snprintf(bak, sizeof(bak), "%s/backup.db", g_tmp);
    const char *backup[] = {g_bin, "db", "backup", bak, "--data-dir", dir, NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(backup, NULL, &out), 0);
    const char *check[] = {g_bin, "db", "check", "--data-dir", dir, NULL};
    assert_int_equal(run_cmd(check, NULL, &out), 0);
    assert_non_null(strstr(out, "ok"));
    const char *exp[] = {g_bin,  "db",         "export", "--costs", "--format",
                         "json", "--data-dir", dir,      NULL};
    assert_int_equal(run_cmd(exp, NULL, &out), 0);
    assert_non_null(strstr(out, "\"id\":\"exact\""));
    assert_non_null(strstr(out, "\"cost\":0.30000000000000004"));
    assert_int_equal(daemon_stop(&d), 0);
    assert_int_equal(af_store_sqlite_check(bak, err, sizeof(err)), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_durability /path/to/agentaflow\n");
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-durability-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_daemon_refused), cmocka_unit_test(test_unusable_dir),
        cmocka_unit_test(test_corrupt_db_refused),    cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_history_after_restart), cmocka_unit_test(test_write_routes_survive),
        cmocka_unit_test(test_crash_rounds),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kill_leftovers();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    curl_global_cleanup();
    return rc;
}
