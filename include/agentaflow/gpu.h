/*
 * agentaflow/gpu.h - GPU scheduler, GPU metrics collector (NVML or simulated backends),
 * aggregation, health and alerts; each optionally traced.
 *
 * Threads: every function on af_gpu_scheduler and af_gpu_collector is thread-safe (each object
 * has one mutex), except af_gpu_scheduler_attach_collector, which must not race with itself or
 * with af_gpu_scheduler_free. Collector callbacks run on the collector thread
 * ("af-gpu-metrics"), or on the caller's thread for af_gpu_collector_collect_now(); they may
 * call the collector's query functions but not start/stop/collect_now or (un)register
 * callbacks.
 *
 * Ownership: every input struct and string is copied; every output is written into caller
 * storage (fixed-size structs, or a malloc'd string the caller frees for *_json functions).
 * Error detail goes into an optional caller buffer (err, err_len; NULL/0 = none) holding the
 * original project's message ("GPU ID cannot be empty", "workload %s not found", ...).
 *
 * Tracing: each component takes an af_gpu_tracing. When `tracing` is set, spans are emitted
 * through af_tracing_tracer_for() so the components.* toggles apply; otherwise `tracer` (may be
 * NULL) is used for every span of the component (handy for unit tests with a bare provider).
 * Both NULL = no spans. Spans are children of the calling thread's current span.
 */
#ifndef AGENTAFLOW_GPU_H
#define AGENTAFLOW_GPU_H

#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

typedef struct af_tracing af_tracing; /* tracing.h */

typedef struct af_gpu_tracing {
    af_tracing *tracing; /* borrowed; must outlive the component */
    af_tracer *tracer;   /* borrowed; used only when tracing is NULL */
} af_gpu_tracing;

/* Bounds of identifiers and names (bytes, NUL included); longer ones are rejected. */
#define AF_GPU_ID_MAX 128
#define AF_GPU_NAME_MAX 256

/* ======================================================================================== */
/* Scheduler                                                                                 */
/* ======================================================================================== */

typedef enum af_gpu_strategy {
    AF_GPU_LEAST_UTILIZED = 0, /* lowest utilization, then fewest workloads, then reg. order */
    AF_GPU_BEST_FIT,           /* smallest free memory that fits, then registration order */
    AF_GPU_PRIORITY,           /* queue by priority (desc, FIFO within), placed least_utilized */
    AF_GPU_ROUND_ROBIN,        /* next fitting GPU after the last one used (persistent cursor) */
} af_gpu_strategy;

/* "least_utilized", "best_fit", "priority", "round_robin". */
const char *af_gpu_strategy_name(af_gpu_strategy s);
/* Parses the names above; -EINVAL for anything else. */
int af_gpu_strategy_parse(const char *name, af_gpu_strategy *out);

typedef enum af_workload_status {
    AF_WORKLOAD_PENDING = 0,
    AF_WORKLOAD_RUNNING,
    AF_WORKLOAD_COMPLETED,
    AF_WORKLOAD_FAILED,
    AF_WORKLOAD_CANCELLED,
} af_workload_status;

/* "pending", "running", "completed", "failed", "cancelled". */
const char *af_workload_status_name(af_workload_status s);

/* Why a workload is still pending after the last scheduling pass. */
typedef enum af_pending_reason {
    AF_PENDING_NONE = 0,            /* not pending */
    AF_PENDING_NOT_YET_SCHEDULED,   /* submitted after the last pass */
    AF_PENDING_NO_GPUS,             /* no GPU registered and available */
    AF_PENDING_TOO_LARGE,           /* larger than the total memory of every available GPU */
    AF_PENDING_INSUFFICIENT_MEMORY, /* fits some GPU, but none has that much free now */
    AF_PENDING_EXCLUSIVE_BUSY,      /* wants a GPU to itself; every big-enough GPU is in use */
} af_pending_reason;

/* "none", "not_yet_scheduled", "no_gpus", "too_large", "insufficient_memory",
 * "exclusive_busy". */
const char *af_pending_reason_name(af_pending_reason r);

/* A GPU to register. memory_used_mb is memory taken by things outside the scheduler. */
typedef struct af_gpu_spec {
    const char *id;   /* required, < AF_GPU_ID_MAX bytes */
    const char *name; /* may be NULL */
    uint64_t memory_total_mb;
    uint64_t memory_used_mb;
    double utilization; /* % */
    double temperature; /* deg C */
    double power_usage; /* W */
    bool available;
} af_gpu_spec;

/* A snapshot of a registered GPU. */
typedef struct af_gpu_status {
    char id[AF_GPU_ID_MAX];
    char name[AF_GPU_NAME_MAX];
    uint64_t memory_total_mb;
    uint64_t memory_used_mb;     /* external use + reservations of running workloads */
    uint64_t memory_reserved_mb; /* reservations of running workloads */
    uint64_t memory_free_mb;     /* total - used */
    double utilization;
    double temperature;
    double power_usage;
    bool available;
    bool exclusive;          /* holds a workload that asked for exclusive use */
    uint32_t workload_count; /* running workloads */
    uint32_t registration_index;
    uint64_t last_metrics_update_ns; /* 0 = never fed by a collector */
} af_gpu_status;

typedef struct af_workload_spec {
    const char *id;   /* required, < AF_GPU_ID_MAX bytes, unique among live workloads */
    const char *name; /* may be NULL */
    int32_t priority; /* higher = more urgent */
    uint64_t memory_required_mb;
    uint64_t estimated_time_ms; /* informational */
    bool exclusive;             /* wants a GPU to itself */
} af_workload_spec;

typedef struct af_workload_info {
    char id[AF_GPU_ID_MAX];
    char name[AF_GPU_NAME_MAX];
    int32_t priority;
    uint64_t memory_required_mb;
    uint64_t estimated_time_ms;
    bool exclusive;
    af_workload_status status;
    char assigned_gpu[AF_GPU_ID_MAX]; /* "" unless running or finished after running */
    uint64_t submitted_ns;            /* wall clock */
    uint64_t started_ns;              /* 0 = never started */
    uint64_t completed_ns;            /* 0 = not finished */
    uint64_t queue_wait_ms;           /* started - submitted, or now - submitted while pending */
    af_pending_reason pending_reason;
    char failure[AF_GPU_NAME_MAX]; /* reason given to af_gpu_scheduler_fail */
} af_workload_info;

/* The original's GetUtilizationMetrics() keys (memory_available_mb is really what is free). */
typedef struct af_gpu_utilization {
    uint32_t total_gpus;
    uint32_t available_gpus;
    uint32_t active_gpus; /* at least one running workload */
    double average_utilization;
    uint64_t memory_total_mb;
    uint64_t memory_used_mb;
    uint64_t memory_available_mb; /* free memory on available GPUs */
    double memory_utilization;    /* used / total * 100, 0 without GPUs */
    uint32_t pending_workloads;
    uint32_t running_workloads;
    double utilization_goal;
} af_gpu_utilization;

typedef struct af_gpu_scheduler af_gpu_scheduler;

/*
 * A workload changed state inside the scheduler: submitted, placed (with the round-robin
 * cursor after the placement), given a new pending reason, finished. Lets a caller keep a
 * durable copy (the daemon's store) without the scheduler knowing about storage. Runs on the
 * thread that made the change with the scheduler's mutex held, in the order of the changes:
 * it must only copy what it needs and return (never call back into the scheduler). `w` is
 * borrowed for the call.
 */
typedef void (*af_workload_change_fn)(const af_workload_info *w, size_t rr_cursor, void *user);

typedef struct af_gpu_scheduler_opts {
    af_gpu_strategy strategy; /* least_utilized */
    double utilization_goal;  /* 80.0, reported */
    /* Finished (completed/failed/cancelled) workloads kept for queries, oldest dropped. 1000 */
    uint32_t finished_retention;
    af_gpu_tracing tracing;
    af_workload_change_fn on_change; /* NULL = none */
    void *on_change_user;
} af_gpu_scheduler_opts;

void af_gpu_scheduler_opts_init(af_gpu_scheduler_opts *o);
int af_gpu_scheduler_new(const af_gpu_scheduler_opts *opts, af_gpu_scheduler **out);
/* Detaches from a collector first (see af_gpu_scheduler_attach_collector). NULL is a no-op. */
void af_gpu_scheduler_free(af_gpu_scheduler *s);
void af_gpu_scheduler_set_strategy(af_gpu_scheduler *s, af_gpu_strategy strategy);
af_gpu_strategy af_gpu_scheduler_strategy(af_gpu_scheduler *s);
/* Replaces the tracing handles (both borrowed). */
void af_gpu_scheduler_set_tracing(af_gpu_scheduler *s, const af_gpu_tracing *t);

/*
 * Registers a GPU (span gpu_scheduling.register_gpu). Validation, in the original's order and
 * words: NULL -> "GPU cannot be NULL", empty id -> "GPU ID cannot be empty", memory_total_mb 0
 * -> "GPU memory total must be greater than 0" (all -EINVAL). Registering a known id updates
 * it in place, keeping its place in registration order and its running workloads; -EBUSY when
 * the new total is below what is committed on it.
 */
int af_gpu_scheduler_register_gpu(af_gpu_scheduler *s, const af_gpu_spec *g, char *err,
                                  size_t err_len);
/* -ENOENT "GPU %s not found"; -EBUSY "GPU %s has running workloads". */
int af_gpu_scheduler_unregister_gpu(af_gpu_scheduler *s, const char *id, char *err, size_t err_len);
/* Marks a GPU (un)available for new placements; running workloads are not touched. */
int af_gpu_scheduler_set_available(af_gpu_scheduler *s, const char *id, bool available);
/* Feeds measured values (what an attached collector does on every sample). */
int af_gpu_scheduler_update_gpu_metrics(af_gpu_scheduler *s, const char *id, double utilization,
                                        double temperature, double power_usage);

/*
 * Queues a workload (span gpu_scheduling.submit_workload, whose context is kept so the span
 * that later places the workload links to it). Errors: "workload cannot be NULL", "workload ID
 * cannot be empty", "workload memory requirement must be greater than 0" (-EINVAL); a live
 * workload with the same id -> -EEXIST "workload %s already exists".
 */
int af_gpu_scheduler_submit(af_gpu_scheduler *s, const af_workload_spec *w, char *err,
                            size_t err_len);
/* Pending or running -> cancelled (running ones release their GPU). -ENOENT "workload %s not
 * found"; -EINVAL "workload %s is <status>" when already finished. */
int af_gpu_scheduler_cancel(af_gpu_scheduler *s, const char *id, char *err, size_t err_len);
/* Running -> completed. -ENOENT "workload %s not found", -EINVAL "workload %s is <status>". */
int af_gpu_scheduler_complete(af_gpu_scheduler *s, const char *id, char *err, size_t err_len);
/* Running (or pending) -> failed, with a reason (may be NULL). Errors as complete. */
int af_gpu_scheduler_fail(af_gpu_scheduler *s, const char *id, const char *reason, char *err,
                          size_t err_len);

/*
 * One scheduling pass (span gpu_scheduling.schedule, linked to the submit span of every
 * workload it places). Walks the queue in FIFO order (priority strategy: by priority, FIFO
 * within a priority) and places each workload that fits; the others stay queued in their
 * order with their pending reason. Memory is never over-committed. *scheduled (may be NULL)
 * receives the number placed. Returns 0.
 */
int af_gpu_scheduler_schedule(af_gpu_scheduler *s, size_t *scheduled);

/*
 * Puts a workload back as it was saved (no span, no change callback): pending ones join the
 * end of the queue (restore them in submission order) with their pending reason; running
 * ones take their memory on assigned_gpu again with their start time (register the GPUs
 * first; a GPU that is gone or too full queues the workload again); finished ones go to the
 * retention ring. 0, -EINVAL, -EEXIST (a live workload has the id) or -ENOMEM.
 */
int af_gpu_scheduler_restore(af_gpu_scheduler *s, const af_workload_info *w);
/* The slot the next round-robin placement tries first (restored from a saved cursor). */
void af_gpu_scheduler_set_rr_cursor(af_gpu_scheduler *s, size_t cursor);

/* 0 or -ENOENT. */
int af_gpu_scheduler_get_workload(af_gpu_scheduler *s, const char *id, af_workload_info *out);
int af_gpu_scheduler_get_gpu(af_gpu_scheduler *s, const char *id, af_gpu_status *out);
/* Copies up to cap GPUs in registration order; returns how many are registered. */
size_t af_gpu_scheduler_list_gpus(af_gpu_scheduler *s, af_gpu_status *out, size_t cap);
/* Copies up to cap live (pending in queue order, then running) workloads; returns the total. */
size_t af_gpu_scheduler_list_workloads(af_gpu_scheduler *s, af_workload_info *out, size_t cap);
/* Span gpu_scheduling.get_utilization. */
void af_gpu_scheduler_utilization(af_gpu_scheduler *s, af_gpu_utilization *out);
/* The original's JSON object (keys of af_gpu_utilization). 0 or -ENOMEM; caller frees *out. */
int af_gpu_utilization_json(const af_gpu_utilization *u, char **out);

/* ======================================================================================== */
/* Metrics                                                                                   */
/* ======================================================================================== */

/* Which fields of a sample hold a measured value (NVML may not support some on some GPUs). */
enum {
    AF_GPU_F_UTIL_GPU = 1u << 0,
    AF_GPU_F_UTIL_MEMORY = 1u << 1,
    AF_GPU_F_MEMORY = 1u << 2, /* memory_total/used/free */
    AF_GPU_F_TEMPERATURE = 1u << 3,
    AF_GPU_F_POWER_DRAW = 1u << 4,
    AF_GPU_F_POWER_LIMIT = 1u << 5,
    AF_GPU_F_FAN = 1u << 6,
    AF_GPU_F_CLOCK_GRAPHICS = 1u << 7,
    AF_GPU_F_CLOCK_MEMORY = 1u << 8,
    AF_GPU_F_ENCODER = 1u << 9,
    AF_GPU_F_DECODER = 1u << 10,
    AF_GPU_F_PROCESSES = 1u << 11,
};

/* One sample of one GPU: the original's GPUMetrics. Invalid fields are 0 (null in JSON). */
typedef struct af_gpu_sample {
    char gpu_id[AF_GPU_ID_MAX]; /* "gpu-<index>" */
    char name[AF_GPU_NAME_MAX];
    char uuid[96]; /* "" when unknown */
    uint64_t timestamp_ns;
    uint32_t valid; /* AF_GPU_F_* */
    double utilization_gpu;
    double utilization_memory;
    uint64_t memory_total_mb;
    uint64_t memory_used_mb; /* never above memory_total_mb */
    uint64_t memory_free_mb;
    double temperature;
    double power_draw;
    double power_limit;
    double fan_speed;
    uint32_t clock_graphics;    /* MHz */
    uint32_t clock_memory;      /* MHz */
    double encoder_utilization; /* % (not a session count) */
    double decoder_utilization;
    uint32_t process_count;
} af_gpu_sample;

typedef struct af_gpu_process {
    uint32_t pid;
    char process_name[64];
    uint64_t memory_used_mb;
    char type; /* 'C' compute, 'G' graphics */
} af_gpu_process;

#define AF_GPU_MAX_PROCESSES 64

/* ---------------------------------------------------------------------------------------- */
/* Backends.                                                                                 */

typedef struct af_gpu_backend af_gpu_backend;

typedef struct af_gpu_backend_ops {
    const char *name; /* "nvml", "simulated", ... */
    /* Number of devices; fixed for the backend's life. */
    uint32_t (*device_count)(void *self);
    /*
     * Fills one sample of device `index` taken at now_ns (wall clock) and up to procs_cap
     * processes (*n_procs). gpu_id/timestamp are filled by the caller. Returns 0 or a
     * negative code (the device is skipped this cycle). Called from one thread at a time.
     */
    int (*sample)(void *self, uint32_t index, uint64_t now_ns, af_gpu_sample *out,
                  af_gpu_process *procs, size_t procs_cap, size_t *n_procs);
    void (*destroy)(void *self); /* may be NULL */
} af_gpu_backend_ops;

/* Wraps hooks. Takes ownership of self (destroy runs in af_gpu_backend_free), even on
 * failure. `ops` must outlive the backend. */
int af_gpu_backend_new(const af_gpu_backend_ops *ops, void *self, af_gpu_backend **out);
void af_gpu_backend_free(af_gpu_backend *b);
const char *af_gpu_backend_name(const af_gpu_backend *b);
uint32_t af_gpu_backend_device_count(const af_gpu_backend *b);
int af_gpu_backend_sample(af_gpu_backend *b, uint32_t index, uint64_t now_ns, af_gpu_sample *out,
                          af_gpu_process *procs, size_t procs_cap, size_t *n_procs);

/* Library searched when no path is given: $AF_NVML_LIBRARY, else this. */
#define AF_NVML_DEFAULT_LIBRARY "libnvidia-ml.so.1"

/*
 * NVML backend: dlopen()s `library` (NULL = $AF_NVML_LIBRARY or AF_NVML_DEFAULT_LIBRARY),
 * initialises NVML and counts devices. Fails with -ENOENT (library missing or a required
 * symbol absent), -EIO (nvmlInit failed) or -ENODEV (no device), with the reason in err.
 */
int af_gpu_backend_nvml_new(const char *library, af_gpu_backend **out, char *err, size_t err_len);

typedef struct af_gpu_sim_opts {
    uint32_t gpus; /* 4 */
    uint64_t seed; /* 1; the same seed and sample times give the same samples */
    double speed;  /* 1.0: simulated seconds per real second (pattern durations too) */
} af_gpu_sim_opts;

void af_gpu_sim_opts_init(af_gpu_sim_opts *o);
/*
 * Simulated backend: the original mock's GPUs (names and memory sizes cycling RTX 4090 ..
 * Quadro RTX 6000) and its five workload patterns (Idle, Light Inference, Training, Heavy
 * Inference, Batch Processing) with bounded dynamics: utilization within the pattern's range
 * (Idle really idle), memory never above total, temperature/power/fan/clock within limits.
 */
int af_gpu_backend_simulated_new(const af_gpu_sim_opts *opts, af_gpu_backend **out);
/* Switches a simulated GPU's pattern by exact name; -EINVAL (not simulated), -ENOENT (bad
 * index or unknown pattern name). */
int af_gpu_sim_set_pattern(af_gpu_backend *b, uint32_t index, const char *pattern);
/* The current pattern's name, "Unknown" for a bad index or non-simulated backend. */
const char *af_gpu_sim_pattern(af_gpu_backend *b, uint32_t index);

/* ---------------------------------------------------------------------------------------- */
/* Thresholds, health and alerts.                                                            */

/*
 * The one threshold table used by health status, alerts (and whoever renders them).
 * A "high" condition is raised when value >= threshold and cleared only when value drops
 * below threshold - hysteresis; "low utilization" symmetrically (raised at <= low, cleared
 * above low + hysteresis). An alert fires when a condition is raised or escalates, never
 * again while it stays raised.
 */
typedef struct af_gpu_thresholds {
    double temperature_warning;  /* 75 deg C */
    double temperature_critical; /* 85 */
    double memory_warning;       /* 80 % of total */
    double memory_critical;      /* 95 */
    double power_warning;        /* 80 % of limit */
    double power_critical;       /* 95 */
    double utilization_low;      /* 10 % */
    double utilization_high;     /* 95 % */
    double utilization_jump;     /* 50 points between consecutive samples */
    double hysteresis;           /* 5 (deg C or percentage points) */
} af_gpu_thresholds;

void af_gpu_thresholds_init(af_gpu_thresholds *t);

typedef enum af_gpu_level {
    AF_GPU_HEALTHY = 0, /* "healthy" / alert severity "info" */
    AF_GPU_WARNING = 1,
    AF_GPU_CRITICAL = 2,
} af_gpu_level;

/* "healthy", "warning", "critical". */
const char *af_gpu_level_name(af_gpu_level l);
/* Alert severity names: "info", "warning", "critical". */
const char *af_gpu_severity_name(af_gpu_level l);

typedef struct af_gpu_alert {
    uint64_t id; /* increasing per collector */
    char gpu_id[AF_GPU_ID_MAX];
    char type[16]; /* "temperature", "memory", "power", "utilization", "process" */
    af_gpu_level severity;
    char message[160]; /* the original's text, e.g. "GPU gpu-0 temperature high" */
    double value;
    double threshold;
    uint64_t timestamp_ns;
    bool acknowledged;
} af_gpu_alert;

#define AF_GPU_HEALTH_MAX_ISSUES 8

typedef struct af_gpu_health {
    char gpu_id[AF_GPU_ID_MAX];
    af_gpu_level status;
    uint64_t timestamp_ns;
    af_gpu_level temperature_status;
    af_gpu_level memory_status;
    af_gpu_level power_status;
    char utilization_status[16]; /* "underutilized", "optimal", "high" */
    uint32_t n_issues;
    char issues[AF_GPU_HEALTH_MAX_ISSUES][96];
    uint32_t n_recommendations;
    char recommendations[AF_GPU_HEALTH_MAX_ISSUES][96];
    uint32_t n_alerts; /* alerts of the last 5 minutes (newest first, up to 8) */
    af_gpu_alert alerts[AF_GPU_HEALTH_MAX_ISSUES];
} af_gpu_health;

/* ---------------------------------------------------------------------------------------- */
/* Derived views. No field is ever NaN: empty data gives 0.                                  */

/* The original's GetSystemOverview(), with an honest memory_available_mb (free). */
typedef struct af_gpu_overview {
    uint32_t total_gpus;
    uint32_t active_gpus; /* latest utilization > 5 % */
    double avg_utilization;
    uint64_t memory_total_mb;
    uint64_t memory_used_mb;
    uint64_t memory_available_mb;
    double memory_utilization;
    uint32_t total_processes;
    uint32_t collection_interval_ms;
    uint64_t timestamp_ns;
    uint32_t healthy_gpus;
} af_gpu_overview;

/* GetGPUEfficiencyMetrics(). */
typedef struct af_gpu_efficiency {
    char gpu_id[AF_GPU_ID_MAX];
    double avg_utilization;
    double avg_memory_util;
    double idle_time_percent;    /* 100 - avg utilization */
    double avg_power_efficiency; /* mean of utilization / W over samples with W > 0 */
    double max_temperature;
    double min_temperature;
    uint32_t sample_count;
    double duration_minutes;
} af_gpu_efficiency;

/* GPUStats. */
typedef struct af_gpu_stats {
    char gpu_id[AF_GPU_ID_MAX];
    uint64_t period_ns;
    double average_utilization;
    double peak_utilization;
    double average_memory_usage; /* MB */
    uint64_t peak_memory_usage;  /* MB */
    double average_temperature;
    double max_temperature;
    double average_power_draw;
    double max_power_draw;
    double total_energy_consumed; /* kWh, trapezoid rule */
    double idle_time_percentage;  /* time below 5 % over the covered span; 0 with < 2 samples */
    double efficiency_score;      /* avg utilization per avg W; 0 without power data */
    uint32_t process_switches;
    double uptime_hours;
    uint64_t start_time_ns;
    uint64_t end_time_ns;
    uint32_t sample_count;
} af_gpu_stats;

/* ---------------------------------------------------------------------------------------- */
/* Collector.                                                                                */

typedef enum af_gpu_backend_kind {
    AF_GPU_BACKEND_AUTO = 0, /* NVML when it loads and finds a device, else simulated */
    AF_GPU_BACKEND_NVML,
    AF_GPU_BACKEND_SIMULATED,
} af_gpu_backend_kind;

typedef struct af_gpu_collector af_gpu_collector;

typedef struct af_gpu_collector_opts {
    af_gpu_backend_kind backend;
    af_gpu_backend *custom;   /* when set, used instead of `backend`; owned by the collector */
    const char *nvml_library; /* NULL = $AF_NVML_LIBRARY or AF_NVML_DEFAULT_LIBRARY */
    af_gpu_sim_opts sim;
    uint32_t interval_ms;      /* 3000; the first sample is taken at once on start */
    uint32_t history_capacity; /* samples kept per GPU: 1000 */
    uint64_t retention_ms;     /* older samples are dropped too: 3600000 (0 = by count only) */
    af_gpu_thresholds thresholds;
    uint32_t alert_history; /* alerts kept: 1000 */
    af_gpu_tracing tracing;
} af_gpu_collector_opts;

void af_gpu_collector_opts_init(af_gpu_collector_opts *o);
/*
 * Creates the collector and its backend. With AF_GPU_BACKEND_NVML a missing library or
 * device is an error (-ENOENT/-EIO/-ENODEV, reason in err); with AUTO it falls back to the
 * simulated backend and says why in af_gpu_collector_backend_reason().
 */
int af_gpu_collector_new(const af_gpu_collector_opts *opts, af_gpu_collector **out, char *err,
                         size_t err_len);
/* Stops the thread if running. NULL is a no-op. */
void af_gpu_collector_free(af_gpu_collector *c);
const char *af_gpu_collector_backend_name(af_gpu_collector *c);
/* Why this backend: "configured", "NVML found 2 devices", "NVML unavailable: ...". */
const char *af_gpu_collector_backend_reason(af_gpu_collector *c);
/* The backend (borrowed), e.g. for af_gpu_sim_set_pattern. */
af_gpu_backend *af_gpu_collector_backend(af_gpu_collector *c);

/* Starts the "af-gpu-metrics" thread, which samples at once and then every interval.
 * -EALREADY "metrics collector is already running". Stop then start again is allowed. */
int af_gpu_collector_start(af_gpu_collector *c);
/* Joins the thread; returns promptly (does not wait for the interval). No-op when stopped. */
void af_gpu_collector_stop(af_gpu_collector *c);
bool af_gpu_collector_running(af_gpu_collector *c);
/* One collection cycle now on the calling thread (serialized with the thread's cycles). */
int af_gpu_collector_collect_now(af_gpu_collector *c);

typedef void (*af_gpu_sample_cb)(const af_gpu_sample *s, void *user);
typedef void (*af_gpu_alert_cb)(const af_gpu_alert *a, void *user);
/*
 * Callbacks run in registration order, per GPU in index order, after the sample is stored
 * (sample callbacks) or the alert recorded (alert callbacks). Returns a handle > 0 for
 * removal, or -ENOMEM. Removal waits for a running cycle to finish, so after it returns the
 * callback is never called again (do not remove from inside a callback).
 */
int af_gpu_collector_add_sample_callback(af_gpu_collector *c, af_gpu_sample_cb fn, void *user);
int af_gpu_collector_add_alert_callback(af_gpu_collector *c, af_gpu_alert_cb fn, void *user);
int af_gpu_collector_remove_callback(af_gpu_collector *c, int handle);

uint32_t af_gpu_collector_gpu_count(af_gpu_collector *c);
/* Copies up to cap latest samples (one per GPU that has one, index order); returns count. */
size_t af_gpu_collector_latest(af_gpu_collector *c, af_gpu_sample *out, size_t cap);
int af_gpu_collector_latest_for(af_gpu_collector *c, const char *gpu_id, af_gpu_sample *out);
/* Samples of gpu_id with timestamp > since_ns, oldest first, up to cap; returns how many
 * match (may exceed cap). Unknown id -> 0. */
size_t af_gpu_collector_history(af_gpu_collector *c, const char *gpu_id, uint64_t since_ns,
                                af_gpu_sample *out, size_t cap);
/* Latest processes of gpu_id; returns the count (may exceed cap). */
size_t af_gpu_collector_processes(af_gpu_collector *c, const char *gpu_id, af_gpu_process *out,
                                  size_t cap);
void af_gpu_collector_overview(af_gpu_collector *c, af_gpu_overview *out);
/* Over samples of the last window_ms (0 = all history). -ENOENT "no metrics available". */
int af_gpu_collector_efficiency(af_gpu_collector *c, const char *gpu_id, uint64_t window_ms,
                                af_gpu_efficiency *out);
/* -ENOENT "no statistics available for GPU %s". */
int af_gpu_collector_stats(af_gpu_collector *c, const char *gpu_id, uint64_t window_ms,
                           af_gpu_stats *out);
/* Health from the latest sample and the threshold table; -ENOENT before the first sample. */
int af_gpu_collector_health(af_gpu_collector *c, const char *gpu_id, af_gpu_health *out);
/* Alerts with timestamp > since_ns (gpu_id NULL = all), oldest first; returns the count
 * matching (may exceed cap). */
size_t af_gpu_collector_alerts(af_gpu_collector *c, const char *gpu_id, uint64_t since_ns,
                               af_gpu_alert *out, size_t cap);
int af_gpu_collector_ack_alert(af_gpu_collector *c, uint64_t alert_id);
/* Puts a saved alert (and whether it was resolved) back into the history, oldest first; new
 * alerts get ids after it. No callbacks run. 0 or -EINVAL. */
int af_gpu_collector_restore_alert(af_gpu_collector *c, const af_gpu_alert *a);
void af_gpu_collector_set_thresholds(af_gpu_collector *c, const af_gpu_thresholds *t);
void af_gpu_collector_get_thresholds(af_gpu_collector *c, af_gpu_thresholds *out);
void af_gpu_collector_set_tracing(af_gpu_collector *c, const af_gpu_tracing *t);

/*
 * Feeds the scheduler's GPUs (matched by id) with utilization, temperature and power from
 * every sample. One collector per scheduler; NULL detaches. The collector must outlive the
 * attachment (af_gpu_scheduler_free detaches).
 */
int af_gpu_scheduler_attach_collector(af_gpu_scheduler *s, af_gpu_collector *c);

/* JSON with the original's keys; 0 or -ENOMEM, caller frees *out. Invalid fields are null. */
int af_gpu_sample_json(const af_gpu_sample *s, char **out);
int af_gpu_stats_json(const af_gpu_stats *s, char **out);
int af_gpu_health_json(const af_gpu_health *h, char **out);
int af_gpu_alert_json(const af_gpu_alert *a, char **out);
int af_gpu_overview_json(const af_gpu_overview *o, char **out);
int af_gpu_efficiency_json(const af_gpu_efficiency *e, char **out);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
