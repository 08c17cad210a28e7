/*
 * agentaflow/config.h - the tracing configuration: the product document's
 * tracing-config.yaml schema as a typed struct, its YAML loader, the OTEL_* environment
 * overlay and dumps for `config check` and /api/v1/config.
 *
 * Precedence, lowest to highest:
 *     1. built-in defaults  (af_tracing_config_init)
 *     2. the config file    (af_tracing_config_load / _load_string)
 *     3. OTEL_* environment (af_tracing_config_apply_env)
 * The environment wins because operators expect it to override a file shipped with the
 * product; the loader never reads the environment itself, so a caller that wants the file
 * to be the last word simply does not call af_tracing_config_apply_env. The daemon calls
 * init, load, apply_env in that order.
 *
 * Every key lives in one table (src/config/keys.c): dotted name, type, default, bounds,
 * environment variable, secret flag and help text. The loader, the environment overlay of
 * the AGENTAFLOW_* variables, the unknown-key warnings, the dumps, `agentaflow config check`,
 * /api/v1/config and docs/configuration.md all read it; af_config_key_at() iterates it.
 *
 * The file also carries the daemon's `server:` section. Its settings are a plain struct
 * (af_server_config) embedded in af_tracing_config rather than a second object beside it, so
 * that one table with one base address describes every key: one YAML parse fills both, one
 * init/copy/free owns both, and the copy the tracing integration keeps (af_tracing_config_of)
 * is what /api/v1/config shows. The tracing SDK ignores the section. It is typed here, in the
 * config layer, without the server's headers; the program maps it to af_server_opts.
 *
 * Durations are written as Go-style strings ("500ms", "30s", "1m", "2h", "1m30s", "1.5s";
 * units ns, us, ms, s, m, h) or as a plain non-negative integer, which means milliseconds
 * (the unit of the OTEL_* timeout variables). They are stored in milliseconds, rounded up.
 *
 * Ownership: an af_tracing_config owns every string and array in it (malloc'd);
 * af_tracing_config_clear releases them and _copy makes a deep copy. Callers that edit a
 * string field free the old value and store a malloc'd one. Not thread-safe: build a config
 * on one thread, then hand it to af_tracing_new (which copies it).
 */
#ifndef AGENTAFLOW_CONFIG_H
#define AGENTAFLOW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/export.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* One key/value pair (header, resource attribute); both strings owned by the config. */
typedef struct af_config_kv {
    char *key;
    char *value;
} af_config_kv;

typedef enum af_config_compression {
    AF_COMPRESSION_NONE = 0,
    AF_COMPRESSION_GZIP = 1,
} af_config_compression;

typedef enum af_config_gpu_backend {
    AF_CONFIG_GPU_AUTO = 0, /* NVML when it works, else simulated GPUs */
    AF_CONFIG_GPU_NVML = 1,
    AF_CONFIG_GPU_SIMULATED = 2,
} af_config_gpu_backend;

typedef enum af_config_fsync {
    AF_CONFIG_FSYNC_FULL = 0,   /* synchronous=FULL: commits survive power loss */
    AF_CONFIG_FSYNC_NORMAL = 1, /* synchronous=NORMAL: commits survive a process crash */
} af_config_fsync;
/* server.log_format: how af_log lines are written (util/log.c). */
typedef enum af_config_log_format {
    AF_CONFIG_LOG_TEXT = 0, /* "agentaflow: warn: http: message" */
    AF_CONFIG_LOG_JSON = 1, /* one JSON object per line */
} af_config_log_format;

/* The daemon's `server:` section (bounds and help in the key table and in
 * docs/configuration.md). Strings are owned; optional ones are NULL when unset. */
typedef struct af_server_config {
    char *bind_address;           /* "127.0.0.1"; other addresses need auth_token */
    int port;                     /* 9000; 0 = any free port */
    int metrics_port;             /* 9001; 0 = any free port; -1 = no Prometheus listener */
    char *auth_token;             /* secret: never shown; NULL = none */
    uint32_t ws_push_interval_ms; /* 2s */
    uint32_t max_ws_clients;      /* 1000 */
    uint32_t ws_queue_depth;      /* 16 */
    uint64_t body_limit;          /* 1 MiB */
    uint32_t max_inflight;        /* 256 */
    uint32_t workers;             /* 4 */
    uint32_t event_loops;         /* 0 = one per online CPU */
    uint32_t trace_store_spans;   /* 8192 */
    uint64_t trace_store_bytes;   /* 64 MiB */
    bool load_generator;          /* true */
    af_config_gpu_backend gpu_backend;
    uint32_t simulated_gpus; /* 4 */
    char *title;             /* "AgentaFlow GPU Monitoring" */
    char *jaeger_ui_url;     /* NULL; the dashboard links traces there */
    char **allowed_hosts;    /* extra accepted Host header values, at most 16 */
    size_t n_allowed_hosts;
    struct {
        bool read; /* false; true: reads need the token too */
    } auth;
    struct {
        char *cert_file; /* NULL = plain HTTP */
        char *key_file;
        char *client_ca_file; /* NULL = no client certificates */
    } tls;
    uint32_t inference_timeout_ms; /* 30s */
    uint32_t max_input_tokens;     /* 8192 */
    uint32_t max_label_values;     /* 1000 */
    char *data_dir;                /* NULL = $STATE_DIRECTORY or ./data; ":memory:" = none */
    bool persist;                  /* true */
    af_config_fsync fsync;         /* full */
    struct {
        uint32_t costs_days;     /* 400 */
        uint32_t workloads_days; /* 30, after finishing */
    } retention;
    int log_level; /* af_log_level: AF_LOG_INFO */
    /* Per-component levels, component name -> level name ("http" -> "debug"); a component
     * listed here ignores log_level. */
    af_config_kv *log_levels;
    size_t n_log_levels;
    af_config_log_format log_format; /* text */
} af_server_config;

/* In af_gpu_strategy order (gpu.h), so the value converts by cast. */
typedef enum af_config_strategy {
    AF_CONFIG_LEAST_UTILIZED = 0,
    AF_CONFIG_BEST_FIT = 1,
    AF_CONFIG_PRIORITY = 2,
    AF_CONFIG_ROUND_ROBIN = 3,
} af_config_strategy;

/* `cluster:`: the fleet scheduler of `agentaflow serve --cluster` and its extender. */
typedef struct af_cluster_config {
    bool enabled;                      /* false; `serve --cluster` sets it */
    af_config_strategy strategy;       /* least_utilized */
    uint32_t node_timeout_ms;          /* 20s without a report = not ready */
    uint32_t reservation_ttl_ms;       /* 30s */
    uint32_t max_nodes;                /* 10000 */
    bool whole_gpu_reported_use;       /* true: reported processes / memory make a whole GPU busy */
    uint32_t whole_gpu_busy_memory_mb; /* 512; 0 = only a reported process makes it busy */
    bool bind;                 /* false: kube-scheduler binds; true: we create the Binding */
    bool extender_auth;        /* true: the extender routes need the bearer token */
    char *kube_api_url;        /* "https://kubernetes.default.svc" */
    char *service_account_dir; /* token and ca.crt live here */
} af_cluster_config;

/* `agent:`: `agentaflow agent`, one per GPU node. */
typedef struct af_agent_config {
    char *scheduler_url;         /* NULL until set (--scheduler or AGENTAFLOW_SCHEDULER_URL) */
    char *node_name;             /* NULL = $NODE_NAME, else the host name */
    uint32_t report_interval_ms; /* 5s */
    char *ca_file;               /* PEM CAs for an https scheduler; NULL = system store */
} af_agent_config;

/* One backend of a served model (serving.models[].backends[]): an OpenAI-compatible server
 * (url) or the simulated model (url NULL). */
typedef struct af_config_backend {
    char *id;       /* instance id; NULL = "<model id>-<index>" */
    char *url;      /* base URL (the server's /v1 paths are appended); NULL = simulated */
    char *model;    /* the model name the server knows; NULL = the model's id */
    char *api_key;  /* Authorization: Bearer; secret; NULL = none */
    char *provider; /* gen_ai.provider.name; NULL = "openai" (url) */
    uint32_t connect_timeout_ms; /* 2s */
    uint32_t timeout_ms;         /* 0 = only the request's own deadline */
    uint32_t max_load;           /* calls in flight at most; 0 = unlimited */
    uint32_t first_token_ms;     /* simulated: wait before the first token (50ms) */
    uint32_t token_interval_ms;  /* simulated: between tokens (30ms) */
} af_config_backend;

/* A served model (serving.models[]). */
typedef struct af_config_model {
    char *id;                                     /* required, unique */
    char *name;                                   /* NULL = id */
    char *owned_by;                               /* NULL = "agentaflow" */
    uint32_t max_tokens;                          /* default when a request gives none; 0 = 256 */
    double input_per_million, output_per_million; /* USD per million tokens */
    double gpu_hourly; /* USD per GPU hour of backend time (self-hosted) */
    af_config_backend *backends;
    size_t n_backends;
} af_config_model;

/* `serving:`: the LLM gateway's models and how it treats their backends. */
typedef struct af_serving_config {
    af_config_model *models; /* none = the embedded simulated models */
    size_t n_models;
    uint32_t breaker_failures;    /* 5 consecutive failures open an instance's breaker */
    uint32_t breaker_cooldown_ms; /* 10s before an open breaker lets one probe through */
    uint32_t connect_retries;     /* 2 */
    uint32_t max_streams;         /* 4096 chat calls in progress */
} af_serving_config;

typedef struct af_tracing_config {
    char *service_name;    /* service_name: "agentaflow-sro" */
    char *service_version; /* service_version: "0.1.0" */
    char *environment;     /* environment: "development" (-> deployment.environment) */

    struct {
        bool enabled;          /* tracing.enabled: true */
        double sampling_ratio; /* tracing.sampling_ratio: 1.0, in [0, 1] */
        /* Not a config key: the embedding program's default span attribute value length
         * limit (bytes), for a daemon that records request values in spans. 0 = the spec
         * default (unlimited). OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT and
         * OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, when set, win over it. */
        uint32_t attribute_value_length_default;
        struct {
            struct {
                bool enabled;   /* tracing.exporters.jaeger.enabled: false */
                char *endpoint; /* "http://localhost:14268/api/traces" */
            } jaeger;
            struct {
                bool enabled;          /* tracing.exporters.otlp_http.enabled: false */
                char *endpoint;        /* full traces URL, "http://localhost:4318/v1/traces" */
                af_config_kv *headers; /* values are secrets: redacted in every dump */
                size_t n_headers;
                af_otlp_protocol protocol;         /* "http/protobuf" | "http/json" */
                af_config_compression compression; /* "none" | "gzip" */
                uint32_t timeout_ms;               /* timeout: 10s; 0 = no limit */
                char *ca_file;                     /* PEM paths, NULL = unset */
                char *client_cert;
                char *client_key;
            } otlp_http;
            struct {
                bool enabled;      /* tracing.exporters.stdout.enabled: false */
                bool pretty_print; /* true */
            } stdout_;
        } exporters;
    } tracing;

    /* resource_attributes: list of {key, value}; applied after service.name/version and
     * deployment.environment, so a listed key overrides them. */
    af_config_kv *resource_attributes;
    size_t n_resource_attributes;

    /* components.*: every toggle defaults to true except the ones the document marks noisy
     * (trace_individual_gpus, trace_websocket_events, trace_health_checks). */
    struct {
        struct {
            bool trace_workload_submission;
            bool trace_scheduling_decisions;
            bool trace_gpu_registration;
        } gpu_scheduler;
        struct {
            bool trace_collection_cycles;
            bool trace_individual_gpus;
        } metrics_collector;
        struct {
            bool trace_inference_requests;
            bool trace_model_loading;
            bool capture_content; /* false: prompts and answers stay off the spans */
        } model_serving;
        struct {
            bool trace_api_requests;
            bool trace_websocket_events;
        } web_dashboard;
        struct {
            bool trace_cost_calculations;
            bool trace_health_checks;
        } observability;
    } components;

    struct {
        uint32_t max_export_batch_size; /* 512 spans per export call */
        /* Upper bound for the final flush when the integration is shut down or freed
         * without an explicit timeout: 30s. */
        uint32_t max_export_timeout_ms;
        uint32_t export_timeout_ms; /* deadline of one batch export, retries included: 30s */
        uint32_t max_queue_size;    /* 2048 spans per exporter queue */
        uint32_t schedule_delay_ms; /* 5s between scheduled exports */
    } performance;

    af_server_config server;   /* server.*: read by the agentaflow daemon only */
    af_cluster_config cluster; /* cluster.* */
    af_agent_config agent;     /* agent.* */
    af_serving_config serving; /* serving.* */
} af_tracing_config;

/* ---------------------------------------------------------------------------------------- */
/* Diagnostics: everything the loader and the environment overlay have to say.               */

typedef enum af_diag_severity {
    AF_DIAG_ERROR = 0,   /* the value was rejected; the key keeps its previous value */
    AF_DIAG_WARNING = 1, /* unknown key, ignored environment value, ... */
    AF_DIAG_INFO = 2,    /* e.g. an alias key was used */
} af_diag_severity;

typedef struct af_config_diag_entry {
    af_diag_severity severity;
    /* The whole line, e.g.
     *   tracing-config.yaml:12:5: tracing.sampling_ratio: expected a number between 0 and 1,
     *   got "high"
     * (source name as given, 1-based line and column of the offending node). Owned. */
    char *message;
    char *key;     /* dotted key the message is about, NULL when none; owned */
    uint32_t line; /* 0 when the message is not about a position (environment) */
    uint32_t column;
} af_config_diag_entry;

/* At most this many entries are kept; later ones are only counted in `suppressed`. */
#define AF_CONFIG_DIAG_MAX 100

typedef struct af_config_diag {
    af_config_diag_entry *entries; /* owned */
    size_t n_entries;
    size_t cap;
    size_t n_errors; /* counts include suppressed entries */
    size_t n_warnings;
    size_t n_infos;
    size_t suppressed;
} af_config_diag;

void af_config_diag_init(af_config_diag *d);
/* Frees every entry; leaves *d initialized and empty. */
void af_config_diag_free(af_config_diag *d);
const char *af_diag_severity_name(af_diag_severity s); /* "error", "warning", "info" */
/* Every entry, one per line ("<message>\n"), malloc'd; NULL on ENOMEM. For `config check`. */
char *af_config_diag_format(const af_config_diag *d);

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle.                                                                                */

/* Fills *cfg with the built-in defaults. Returns 0 or -ENOMEM (cfg then needs no free). */
int af_tracing_config_init(af_tracing_config *cfg);
/* Releases everything cfg owns and zeroes it, leaving the struct (the caller's) ready for
 * _init again; NULL is a no-op. `_clear`, not `_free`: cfg is embedded, never allocated by
 * the library. */
void af_tracing_config_clear(af_tracing_config *cfg);
/* The former name of af_tracing_config_clear, kept because it is part of the released ABI
 * (AGENTAFLOW_0) and services outside this tree call it; same behaviour. New code uses
 * _clear. */
void af_tracing_config_free(af_tracing_config *cfg);
/* Deep copy into *dst (which is overwritten, not freed first). 0 or -ENOMEM. */
int af_tracing_config_copy(af_tracing_config *dst, const af_tracing_config *src);

/*
 * Reads the YAML file at `path` over *cfg (which must be initialized; keys absent from the
 * file keep their current values). Every problem goes into *diag (may be NULL): all errors
 * up to AF_CONFIG_DIAG_MAX are collected rather than stopping at the first; a rejected value
 * leaves its key unchanged. Unknown keys are warnings with a "did you mean" suggestion; the
 * original Go project's flat keys (exporter_type, jaeger_endpoint, otlp_endpoint,
 * sample_rate, attributes, enabled_spans) are accepted as aliases with an info note, and a
 * canonical key beats its alias wherever both appear.
 *
 * Returns 0 when there were no errors, AF_EPARSE when at least one error was recorded
 * (cfg then holds every value that was valid), -errno when the file cannot be read, or
 * -ENOMEM.
 */
int af_tracing_config_load(const char *path, af_tracing_config *cfg, af_config_diag *diag);
/* The same from memory; `name` is used in messages ("<string>" when NULL). */
int af_tracing_config_load_string(const char *name, const char *yaml, size_t len,
                                  af_tracing_config *cfg, af_config_diag *diag);

/*
 * Applies the environment over *cfg (see the precedence above).
 *
 * Keys whose table row names an AGENTAFLOW_* variable (AGENTAFLOW_AUTH_TOKEN,
 * AGENTAFLOW_BIND_ADDRESS, AGENTAFLOW_PORT, AGENTAFLOW_METRICS_PORT, AGENTAFLOW_ALLOWED_HOSTS
 * as a comma-separated list) take the variable's text exactly as a YAML value; a bad value is
 * an error in *diag, because a daemon that silently dropped, say, its token would start more
 * exposed than its operator asked.
 *
 * The OTEL_* variables: OTEL_SDK_DISABLED,
 * OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER/_ARG (the traceidratio family sets
 * sampling_ratio; always_on/always_off set it to 1/0), OTEL_TRACES_EXPORTER (otlp, console
 * -> stdout, jaeger with a deprecation warning, none), OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT /
 * HEADERS / TIMEOUT / COMPRESSION / PROTOCOL / CERTIFICATE / CLIENT_KEY / CLIENT_CERTIFICATE
 * (per-signal beats generic), OTEL_BSP_SCHEDULE_DELAY / EXPORT_TIMEOUT / MAX_QUEUE_SIZE /
 * MAX_EXPORT_BATCH_SIZE. An empty variable is unset; a bad value is a warning in *diag and
 * is ignored. OTEL_RESOURCE_ATTRIBUTES is left to af_resource_new (which reads it when the
 * integration builds its resource), so it is applied exactly once.
 * Returns 0 or -ENOMEM.
 */
int af_tracing_config_apply_env(af_tracing_config *cfg, af_config_diag *diag);

/* Checks cross-key consistency that a single key cannot (e.g. client_cert without
 * client_key, an enabled exporter with an empty endpoint); adds errors to *diag.
 * Returns 0 or AF_EPARSE. The loader calls it; apply_env does not. */
int af_tracing_config_validate(const af_tracing_config *cfg, af_config_diag *diag);

/* ---------------------------------------------------------------------------------------- */
/* The key table.                                                                            */

typedef enum af_config_type {
    AF_CFG_STRING = 0,
    AF_CFG_BOOL,
    AF_CFG_RATIO,    /* number in [0, 1] */
    AF_CFG_UINT,     /* integer in [min, max] */
    AF_CFG_DURATION, /* milliseconds in [min, max] */
    AF_CFG_MAP,      /* mapping of string to string */
    AF_CFG_KV_LIST,  /* sequence of {key, value} mappings */
    AF_CFG_ENUM,     /* one of enum_values */
    AF_CFG_INT,      /* signed integer (int) in [min, max] */
    AF_CFG_BYTES,    /* byte count (uint64_t) in [min, max] */
    AF_CFG_LIST,     /* sequence of strings, at most max entries */
    AF_CFG_MODELS,   /* sequence of model mappings (af_config_model), at most max */
} af_config_type;

typedef struct af_config_key_info {
    const char *key; /* dotted, e.g. "tracing.exporters.otlp_http.timeout" */
    af_config_type type;
    const char *default_text; /* the default as it would be written in YAML */
    /* Numeric bounds (durations in milliseconds), signed so that one pair serves int
     * (metrics_port's -1) and 64-bit byte counts alike; for a list, max is its most entries. */
    int64_t min, max;
    const char *env;                /* environment variable(s) that override it, or NULL */
    const char *const *enum_values; /* NULL-terminated, for AF_CFG_ENUM */
    bool secret;                    /* values never shown (map values for headers) */
    const char *help;
} af_config_key_info;

const char *af_config_type_name(af_config_type t); /* "string", "bool", ... */
size_t af_config_key_count(void);
/* Row i of the table (NULL past the end); static storage. */
const af_config_key_info *af_config_key_at(size_t i);
/* The row for a dotted key, or NULL. */
const af_config_key_info *af_config_key_find(const char *dotted);
/* The bounds or allowed values of a row in words ("0 to 65535", "\"auto\", \"nvml\"",
 * "at most 16 entries"), "" when it has none or k is not a row of the table. For the
 * documentation. */
void af_config_key_bounds(const af_config_key_info *k, char *out, size_t out_len);

/*
 * Sets one scalar key (not a map or list) from text, validated exactly like the same value in
 * the file; for command-line flags that override a key. Returns 0; -EINVAL for an unknown or
 * non-scalar key; AF_EPARSE with the reason ("expected a port number ...") in err; -ENOMEM.
 */
int af_config_set(af_tracing_config *cfg, const char *key, const char *text, char *err,
                  size_t err_len);

/*
 * Whether SIGHUP can apply a change of this key to a running daemon (sampling ratio,
 * exporters, components.*, server.log_*). Other keys need a restart.
 */
bool af_config_key_reloadable(const char *dotted);
/*
 * The keys whose values differ between a and b and that are not reloadable, in table order:
 * up to cap of their names (static storage) into out; returns how many differ.
 */
size_t af_config_restart_keys(const af_tracing_config *a, const af_tracing_config *b,
                              const char **out, size_t cap);

/* ---------------------------------------------------------------------------------------- */
/* Dumps. With `redact`, secret values are written as "[redacted]" (header names stay);    */
/* endpoints lose any userinfo. *out is malloc'd (caller frees). 0 or -ENOMEM.              */

/* A JSON object nested as in the YAML document (durations as strings like "30s"). */
int af_config_dump_json(const af_tracing_config *cfg, bool redact, char **out);
/* One "dotted.key = value" line per table row, in table order. */
int af_config_dump_text(const af_tracing_config *cfg, bool redact, char **out);
/* docs/configuration.md: every key of the table grouped by section, with its type, default,
 * bounds, environment variable and help, as Markdown. *out malloc'd. 0 or -ENOMEM. */
int af_config_dump_docs(char **out);
/* The same reference as a man(7) page, agentaflow.yaml(5), for the Debian package. */
int af_config_dump_docs_man(char **out);

/* Parses a duration as described at the top into milliseconds. 0 or AF_EPARSE (also for a
 * value above UINT32_MAX ms). */
int af_config_parse_duration(const char *s, uint32_t *out_ms);
/* Formats milliseconds in the shortest exact form ("30s", "1500ms", "2h", "0"). */
void af_config_format_duration(uint32_t ms, char *out, size_t out_len);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
