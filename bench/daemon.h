/*
 * bench/daemon.h - what the benchmarks that drive the daemon from outside share (bench_server,
 * bench_store): the agentaflow binary next to the program, a scratch directory, starting and
 * stopping the daemon, and wrk runs.
 *
 * Single-threaded: the state (binary path, scratch directory, run length) is the process's,
 * set once by bench_setup. Nothing here asserts; failures are returned.
 */
#ifndef AF_BENCH_DAEMON_H
#define AF_BENCH_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/* Finds agentaflow next to this program, reads BENCH_SECONDS (default 5) and makes the
 * scratch directory from tmp_template ("/tmp/af-bench-XXXXXX"). Returns 0; 1 when the
 * daemon is not built (said on stdout as "# name: ... skipped"); -1 on failure. */
int bench_setup(const char *name, const char *tmp_template);
/* Removes the scratch directory: 0, or -1 when that failed. */
int bench_cleanup(void);
/* The scratch directory, and each wrk run's length in seconds. */
const char *bench_tmp(void);
int bench_seconds(void);
/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void);

/* Starts `agentaflow serve` on ephemeral ports with the simulated GPU backend, no load
 * generator, config (YAML text) and data_dir (":memory:" = nothing saved); with metrics, the
 * Prometheus listener too (*mport; may be NULL otherwise). Waits up to a minute for the
 * ports; *ready_s (may be NULL) gets the seconds that took. Returns the pid, or -1. */
pid_t bench_daemon_start(const char *config, const char *data_dir, bool metrics, int *port,
                         int *mport, double *ready_s);
/* SIGTERM, then waits for it. */
void bench_daemon_stop(pid_t pid);

/* wrk -t threads -c conns for bench_seconds() on url with a Lua script (may be NULL): the
 * rate and the 99th percentile latency in ms. *non2xx (may be NULL) tells whether any answer
 * was not 2xx. Returns 0, or -1 when wrk failed or measured nothing. */
int bench_wrk(const char *url, int threads, int conns, const char *script, double *rps,
              double *p99_ms, bool *non2xx);

#endif
