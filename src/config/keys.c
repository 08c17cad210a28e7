/*
 * The one key table of the tracing configuration (docs/architecture.md) and the public key
 * API over it (af_config_key_*, af_config_set). keys_value.c holds the typed setters every
 * reader of the table shares; config_life.c initialises (each row's default_text parsed by
 * the same setter the YAML loader uses, so the table cannot disagree with itself), copies,
 * frees and cross-checks an af_tracing_config.
 *
 * The table stays one array in one file: lookup walks it in order, and a row's section is
 * its key's prefix, so a reader sees every key and its neighbours in one place.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config_int.h"

#define OFF(field) offsetof(af_tracing_config, field)
#define DAY_MS (24u * 3600u * 1000u)

static const char *const protocol_values[] = {"http/protobuf", "http/json", NULL};
static const char *const compression_values[] = {"none", "gzip", NULL};
/* In af_config_gpu_backend order. */
static const char *const gpu_backend_values[] = {"auto", "nvml", "simulated", NULL};
/* In af_config_fsync order. */
static const char *const fsync_values[] = {"full", "normal", NULL};
/* In af_config_strategy order. */
static const char *const strategy_values[] = {"least_utilized", "best_fit", "priority",
                                              "round_robin", NULL};
/* In af_log_level order. */
static const char *const log_level_values[] = {"debug", "info", "warn", "error", "off", NULL};
/* In af_config_log_format order. */
static const char *const log_format_values[] = {"text", "json", NULL};

#define STR(k, f, d, env, fl, help)                                                                \
    {                                                                                              \
        {k, AF_CFG_STRING, d, 0, 0, env, NULL, false, help}, OFF(f), 0, fl, 0, NULL                \
    }
#define BOOL(k, f, d, env, help)                                                                   \
    {                                                                                              \
        {k, AF_CFG_BOOL, d, 0, 0, env, NULL, false, help}, OFF(f), 0, 0, 0, NULL                   \
    }
#define UINT(k, f, d, lo, hi, env, help)                                                           \
    {                                                                                              \
        {k, AF_CFG_UINT, d, lo, hi, env, NULL, false, help}, OFF(f), 0, 0, 0, NULL                 \
    }
#define DUR(k, f, d, lo, hi, env, help)                                                            \
    {                                                                                              \
        {k, AF_CFG_DURATION, d, lo, hi, env, NULL, false, help}, OFF(f), 0, 0, 0, NULL             \
    }
#define TOGGLE(k, f, d, help) BOOL("components." k, components.f, d, NULL, help)

/* server.* rows: strings carry a length limit and most rows a message of their own, kept
 * from the daemon's former hand-written parser so operators see the words they know. */
#define SSTR(k, f, d, env, fl, maxlen, secret, expect, help)                                       \
    {                                                                                              \
        {"server." k, AF_CFG_STRING, d, 0, 0, env, NULL, secret, help}, OFF(server.f), 0, fl,      \
            maxlen, expect                                                                         \
    }
#define SINT(k, f, d, lo, hi, env, fl, expect, help)                                               \
    {                                                                                              \
        {"server." k, AF_CFG_INT, d, lo, hi, env, NULL, false, help}, OFF(server.f), 0, fl, 0,     \
            expect                                                                                 \
    }
#define SUINT(k, f, d, lo, hi, help) UINT("server." k, server.f, d, lo, hi, NULL, help)
#define SBYTES(k, f, d, lo, hi, help)                                                              \
    {                                                                                              \
        {"server." k, AF_CFG_BYTES, d, lo, hi, NULL, NULL, false, help}, OFF(server.f), 0, 0, 0,   \
            NULL                                                                                   \
    }
#define HOUR_MS (3600u * 1000u)
#define PATH_MAX_LEN 4095

const af__config_key af__config_keys[] = {
    STR("service_name", service_name, "agentaflow-sro", "OTEL_SERVICE_NAME", 0,
        "service.name of every span's resource"),
    STR("service_version", service_version, "0.1.0", NULL, 0, "service.version resource attribute"),
    STR("environment", environment, "development", NULL, 0,
        "deployment.environment resource attribute"),
    BOOL("tracing.enabled", tracing.enabled, "true", "OTEL_SDK_DISABLED",
         "master switch; false builds no provider and every tracer is NULL "
         "(OTEL_SDK_DISABLED=true overrides it)"),
    {{"tracing.sampling_ratio", AF_CFG_RATIO, "1.0", 0, 1,
      "OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG", NULL, false,
      "fraction of new traces recorded, 0 to 1; children follow their parent's decision "
      "(ParentBased(TraceIdRatioBased))"},
     OFF(tracing.sampling_ratio),
     0,
     0,
     0,
     NULL},
    BOOL("tracing.exporters.jaeger.enabled", tracing.exporters.jaeger.enabled, "false",
         "OTEL_TRACES_EXPORTER", "send spans to a Jaeger collector as Thrift over HTTP"),
    STR("tracing.exporters.jaeger.endpoint", tracing.exporters.jaeger.endpoint,
        "http://localhost:14268/api/traces", NULL, AF__KEY_URL,
        "Jaeger collector URL (the collector's /api/traces on port 14268)"),
    BOOL("tracing.exporters.otlp_http.enabled", tracing.exporters.otlp_http.enabled, "false",
         "OTEL_TRACES_EXPORTER", "send spans over OTLP/HTTP"),
    STR("tracing.exporters.otlp_http.endpoint", tracing.exporters.otlp_http.endpoint,
        "http://localhost:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT", AF__KEY_URL,
        "full traces URL, used as-is (OTEL_EXPORTER_OTLP_ENDPOINT is a base: /v1/traces is "
        "appended)"),
    {{"tracing.exporters.otlp_http.headers", AF_CFG_MAP, "{}", 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_HEADERS", NULL, true,
      "extra HTTP headers such as API keys; values are secret and never shown "
      "(environment headers replace same-named file headers)"},
     OFF(tracing.exporters.otlp_http.headers),
     OFF(tracing.exporters.otlp_http.n_headers),
     0,
     0,
     NULL},
    {{"tracing.exporters.otlp_http.protocol", AF_CFG_ENUM, "http/protobuf", 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL", protocol_values, false,
      "request body encoding"},
     OFF(tracing.exporters.otlp_http.protocol),
     0,
     0,
     0,
     NULL},
    {{"tracing.exporters.otlp_http.compression", AF_CFG_ENUM, "none", 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, OTEL_EXPORTER_OTLP_COMPRESSION", compression_values,
      false, "request body compression"},
     OFF(tracing.exporters.otlp_http.compression),
     0,
     0,
     0,
     NULL},
    DUR("tracing.exporters.otlp_http.timeout", tracing.exporters.otlp_http.timeout_ms, "10s", 0,
        DAY_MS, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT",
        "deadline of one OTLP export, retries included; 0 = no limit"),
    STR("tracing.exporters.otlp_http.ca_file", tracing.exporters.otlp_http.ca_file, "",
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, OTEL_EXPORTER_OTLP_CERTIFICATE", AF__KEY_OPTIONAL,
        "PEM file of CAs trusted instead of the system store"),
    STR("tracing.exporters.otlp_http.client_cert", tracing.exporters.otlp_http.client_cert, "",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        AF__KEY_OPTIONAL, "PEM client certificate for mutual TLS (needs client_key)"),
    STR("tracing.exporters.otlp_http.client_key", tracing.exporters.otlp_http.client_key, "",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY, OTEL_EXPORTER_OTLP_CLIENT_KEY", AF__KEY_OPTIONAL,
        "PEM private key for mutual TLS (the path is shown, the file never read here)"),
    BOOL("tracing.exporters.stdout.enabled", tracing.exporters.stdout_.enabled, "false",
         "OTEL_TRACES_EXPORTER (console)", "write spans to stdout as OTLP/JSON (debugging)"),
    BOOL("tracing.exporters.stdout.pretty_print", tracing.exporters.stdout_.pretty_print, "true",
         NULL, "indented multi-line JSON instead of one line per span"),
    {{"resource_attributes", AF_CFG_KV_LIST, "[]", 0, 0, "OTEL_RESOURCE_ATTRIBUTES", NULL, false,
      "extra resource attributes, a list of {key, value}; they override service_name, "
      "service_version and environment, and beat OTEL_RESOURCE_ATTRIBUTES"},
     OFF(resource_attributes),
     OFF(n_resource_attributes),
     0,
     0,
     NULL},
    TOGGLE("gpu_scheduler.trace_workload_submission", gpu_scheduler.trace_workload_submission,
           "true", "spans for workload submission"),
    TOGGLE("gpu_scheduler.trace_scheduling_decisions", gpu_scheduler.trace_scheduling_decisions,
           "true", "spans for scheduling passes"),
    TOGGLE("gpu_scheduler.trace_gpu_registration", gpu_scheduler.trace_gpu_registration, "true",
           "spans for GPU registration"),
    TOGGLE("metrics_collector.trace_collection_cycles", metrics_collector.trace_collection_cycles,
           "true", "one span per metrics collection cycle"),
    TOGGLE("metrics_collector.trace_individual_gpus", metrics_collector.trace_individual_gpus,
           "false", "one span per GPU per cycle (noisy)"),
    TOGGLE("model_serving.trace_inference_requests", model_serving.trace_inference_requests, "true",
           "spans for inference requests"),
    TOGGLE("model_serving.trace_model_loading", model_serving.trace_model_loading, "true",
           "spans for model registration and loading"),
    TOGGLE("model_serving.capture_content", model_serving.capture_content, "false",
           "record chat prompts and answers on the LLM gateway's spans (gen_ai.input.messages, "
           "gen_ai.output.messages); they may hold personal data"),
    TOGGLE("web_dashboard.trace_api_requests", web_dashboard.trace_api_requests, "true",
           "server spans for HTTP API requests"),
    TOGGLE("web_dashboard.trace_websocket_events", web_dashboard.trace_websocket_events, "false",
           "spans for WebSocket messages (noisy)"),
    TOGGLE("observability.trace_cost_calculations", observability.trace_cost_calculations, "true",
           "spans for cost recording and summaries"),
    TOGGLE("observability.trace_health_checks", observability.trace_health_checks, "false",
           "spans for health checks (noisy)"),
    UINT("performance.max_export_batch_size", performance.max_export_batch_size, "512", 1, 1u << 20,
         "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "spans per export call (clamped to max_queue_size)"),
    DUR("performance.max_export_timeout", performance.max_export_timeout_ms, "30s", 0, DAY_MS, NULL,
        "bound on the final flush when tracing shuts down; 0 = no limit"),
    DUR("performance.export_timeout", performance.export_timeout_ms, "30s", 0, DAY_MS,
        "OTEL_BSP_EXPORT_TIMEOUT",
        "deadline of one batch export (and of a Jaeger request); "
        "0 = no limit"),
    UINT("performance.max_queue_size", performance.max_queue_size, "2048", 1, 1u << 24,
         "OTEL_BSP_MAX_QUEUE_SIZE",
         "spans buffered per exporter (all threads together) before new ones are dropped"),
    DUR("performance.schedule_delay", performance.schedule_delay_ms, "5s", 1, DAY_MS,
        "OTEL_BSP_SCHEDULE_DELAY", "longest wait between scheduled exports"),

    SSTR("bind_address", bind_address, "127.0.0.1", "AGENTAFLOW_BIND_ADDRESS", AF__KEY_ENV, 127,
         false, "expected an IP address",
         "listen address of the dashboard, API and metrics; a non-loopback address needs "
         "auth_token"),
    SINT("port", port, "9000", 0, 65535, "AGENTAFLOW_PORT", AF__KEY_ENV,
         "expected a port number 0-65535 (0 = any free port)",
         "dashboard, JSON API and WebSocket port; 0 = any free port"),
    SINT("metrics_port", metrics_port, "9001", -1, 65535, "AGENTAFLOW_METRICS_PORT", AF__KEY_ENV,
         "expected a port number 0-65535 (0 = any free port) or -1 (no listener)",
         "Prometheus /metrics port; 0 = any free port, -1 = no listener"),
    SSTR("auth_token", auth_token, "", "AGENTAFLOW_AUTH_TOKEN", AF__KEY_ENV | AF__KEY_OPTIONAL, 255,
         true, "expected a token of at most 255 bytes",
         "bearer token required on write routes (and on reads with auth.read); secret: never "
         "shown or logged; empty = none, allowed only on a loopback bind_address"),
    BOOL("server.auth.read", server.auth.read, "false", NULL,
         "true: GET routes, /ws and /metrics need the token too"),
    DUR("server.ws_push_interval", server.ws_push_interval_ms, "2s", 100, HOUR_MS, NULL,
        "metrics_update WebSocket broadcast period"),
    SUINT("max_ws_clients", max_ws_clients, "1000", 1, 100000,
          "WebSocket clients; more are closed with 1013 and a reason"),
    SUINT("ws_queue_depth", ws_queue_depth, "16", 1, 1024,
          "messages queued per WebSocket client; a full queue drops its oldest"),
    SBYTES("body_limit", body_limit, "1048576", 1024, 64ll << 20,
           "largest request body in bytes; more answers 413"),
    SUINT("max_inflight", max_inflight, "256", 1, 100000,
          "asynchronous requests in flight; more answer 503"),
    SUINT("workers", workers, "4", 1, 64,
          "worker threads for inference calls and the cluster extender's bind calls"),
    SUINT("event_loops", event_loops, "0", 0, 64,
          "HTTP event-loop threads; 0 = one per online CPU (at most 8)"),
    SUINT("trace_store_spans", trace_store_spans, "8192", 16, 1000000,
          "spans the in-process trace store keeps for /api/v1/traces (oldest dropped first)"),
    SBYTES("trace_store_bytes", trace_store_bytes, "67108864", 1ll << 20, 64ll << 30,
           "bound on the trace store's memory in bytes"),
    BOOL("server.load_generator", server.load_generator, "true", NULL,
         "synthetic workloads, inference requests and costs so the dashboard has data"),
    {{"server.gpu_backend", AF_CFG_ENUM, "auto", 0, 0, NULL, gpu_backend_values, false,
      "GPU metrics source: NVML when it works (auto), NVML only, or simulated GPUs"},
     OFF(server.gpu_backend),
     0,
     0,
     0,
     NULL},
    SUINT("simulated_gpus", simulated_gpus, "4", 1, 64, "GPUs of the simulated backend"),
    SSTR("title", title, "AgentaFlow GPU Monitoring", NULL, 0, 127, false, NULL,
         "dashboard page title"),
    SSTR("jaeger_ui_url", jaeger_ui_url, "", NULL, AF__KEY_OPTIONAL | AF__KEY_URL, 2048, false,
         NULL,
         "Jaeger UI the dashboard links every trace to; empty = the enabled Jaeger exporter's "
         "host on port 16686, if any"),
    {{"server.allowed_hosts", AF_CFG_LIST, "[]", 0, 16, "AGENTAFLOW_ALLOWED_HOSTS", NULL, false,
      "Host header values accepted besides localhost, 127.0.0.1 and [::1] with the "
      "listener's port; an entry without :port matches any port (environment: comma-separated)"},
     OFF(server.allowed_hosts),
     OFF(server.n_allowed_hosts),
     AF__KEY_ENV,
     255,
     "expected a host name, optionally with :port"},
    SSTR("tls.cert_file", tls.cert_file, "", NULL, AF__KEY_OPTIONAL, PATH_MAX_LEN, false,
         "expected a file path of at most 4095 bytes",
         "PEM certificate chain; set = HTTPS (needs tls.key_file)"),
    SSTR("tls.key_file", tls.key_file, "", NULL, AF__KEY_OPTIONAL, PATH_MAX_LEN, false,
         "expected a file path of at most 4095 bytes", "PEM private key of tls.cert_file"),
    SSTR("tls.client_ca_file", tls.client_ca_file, "", NULL, AF__KEY_OPTIONAL, PATH_MAX_LEN, false,
         "expected a file path of at most 4095 bytes",
         "PEM CAs for client certificates; set = mutual TLS (needs tls.cert_file)"),
    DUR("server.inference_timeout", server.inference_timeout_ms, "30s", 100, HOUR_MS, NULL,
        "an inference running longer answers 504"),
    SUINT("max_input_tokens", max_input_tokens, "8192", 1, 1000000,
          "longer inference input answers 400"),
    SUINT("max_label_values", max_label_values, "1000", 10, 100000,
          "distinct label values per Prometheus metric family"),
    SSTR("data_dir", data_dir, "", "AGENTAFLOW_DATA_DIR", AF__KEY_ENV | AF__KEY_OPTIONAL,
         PATH_MAX_LEN, false, "expected a directory path of at most 4095 bytes",
         "directory of the durable state (created 0700, one daemon at a time); empty = "
         "$STATE_DIRECTORY when systemd sets it, else ./data; \":memory:\" = nothing persists"),
    BOOL("server.persist", server.persist, "true", NULL,
         "false: keep every state in memory only, as with data_dir \":memory:\""),
    {{"server.fsync", AF_CFG_ENUM, "full", 0, 0, NULL, fsync_values, false,
      "full: an acknowledged write survives power loss (synchronous=FULL); normal: it "
      "survives a crash of the daemon but the last commits may be lost with the machine"},
     OFF(server.fsync),
     0,
     0,
     0,
     NULL},
    {{"server.log_level", AF_CFG_ENUM, "info", 0, 0, "OTEL_LOG_LEVEL", log_level_values, false,
      "least severe log messages written, for components without their own level"},
     OFF(server.log_level),
     0,
     0,
     0,
     NULL},
    /* A map whose values must be one of enum_values (the loader checks each at its line). */
    {{"server.log_levels", AF_CFG_MAP, "{}", 0, 0, NULL, log_level_values, false,
      "level per component, e.g. {http: debug, tracing: warn}; components: config, "
      "export, gpu, http, serving, server, tracing"},
     OFF(server.log_levels),
     OFF(server.n_log_levels),
     0,
     0,
     NULL},
    {{"server.log_format", AF_CFG_ENUM, "text", 0, 0, NULL, log_format_values, false,
      "text lines, or json: one object per line with time, level, component, message and, "
      "inside a span, trace_id and span_id"},
     OFF(server.log_format),
     0,
     0,
     0,
     NULL},

    BOOL("cluster.enabled", cluster.enabled, "false", NULL,
         "run as the fleet's scheduler: agents report to /api/v1/cluster/report and "
         "kube-scheduler calls /scheduler/filter|prioritize|bind (`serve --cluster`)"),
    {{"cluster.strategy", AF_CFG_ENUM, "least_utilized", 0, 0, NULL, strategy_values, false,
      "how the extender scores nodes: least_utilized, best_fit (pack), priority "
      "(spec.priority > 0 gets headroom, the rest packs) or round_robin"},
     OFF(cluster.strategy),
     0,
     0,
     0,
     NULL},
    UINT("server.retention.costs", server.retention.costs_days, "400", 1, 36500, NULL,
         "days the cost ledger and its hourly roll-ups are kept on disk"),
    UINT("server.retention.workloads", server.retention.workloads_days, "30", 1, 36500, NULL,
         "days a finished workload is kept on disk after it finished"),
    DUR("cluster.node_timeout", cluster.node_timeout_ms, "20s", 1000, HOUR_MS, NULL,
        "a node without an agent report for this long is not ready and gets no new work"),
    DUR("cluster.reservation_ttl", cluster.reservation_ttl_ms, "30s", 1000, HOUR_MS, NULL,
        "how long the GPU chosen for a pod (and a bound pod's GPU) is held back from other pods"),
    UINT("cluster.max_nodes", cluster.max_nodes, "10000", 1, 1000000, NULL,
         "nodes the inventory keeps and candidates one extender request may name"),
    BOOL("cluster.whole_gpu_reported_use", cluster.whole_gpu_reported_use, "true", NULL,
         "true: a pod asking for whole GPUs is not offered a GPU whose latest agent report shows "
         "a process on it or more memory used than cluster.whole_gpu_busy_memory_mb (a job whose "
         "reservation ended still owns its GPU); false: only agentaflow's reservations and "
         "bindings take a GPU (simulated fleets, GPUs shared with monitoring processes)"),
    UINT("cluster.whole_gpu_busy_memory_mb", cluster.whole_gpu_busy_memory_mb, "512", 0, 1048576,
         NULL,
         "MiB of used memory above which a GPU counts as busy for whole-GPU pods even when its "
         "agent lists no process (an agent without the host's PID namespace sees none). 512 "
         "clears what an idle GPU reports (the driver's reservation, tens of MiB, a few "
         "hundred on some boards) while one CUDA context with its first allocations passes "
         "it; 0 = only a listed process makes a GPU busy"),
    BOOL("cluster.bind", cluster.bind, "false", NULL,
         "true: /scheduler/bind creates the Binding through the Kubernetes API and annotates "
         "the pod with agentaflow.io/gpu; false: kube-scheduler binds"),
    BOOL("cluster.extender_auth", cluster.extender_auth, "true", NULL,
         "false: /scheduler/filter, /prioritize and /bind need no bearer token, because "
         "kube-scheduler's extender client cannot send one; restrict who reaches the port with "
         "a NetworkPolicy or mutual TLS (server.tls.client_ca_file) instead"),
    STR("cluster.kube_api_url", cluster.kube_api_url, "https://kubernetes.default.svc", NULL,
        AF__KEY_URL, "Kubernetes API server used by cluster.bind"),
    STR("cluster.service_account_dir", cluster.service_account_dir,
        "/var/run/secrets/kubernetes.io/serviceaccount", NULL, 0,
        "directory holding the service-account token and ca.crt used by cluster.bind"),
    {{"agent.scheduler_url", AF_CFG_STRING, "", 0, 0, "AGENTAFLOW_SCHEDULER_URL", NULL, false,
      "base URL of the cluster scheduler `agentaflow agent` reports to (--scheduler)"},
     OFF(agent.scheduler_url),
     0,
     AF__KEY_OPTIONAL | AF__KEY_URL | AF__KEY_ENV,
     2048,
     NULL},
    {{"agent.node_name", AF_CFG_STRING, "", 0, 0, "NODE_NAME", NULL, false,
      "this node's Kubernetes name (--node-name); empty = the host name"},
     OFF(agent.node_name),
     0,
     AF__KEY_OPTIONAL | AF__KEY_ENV,
     253,
     NULL},
    DUR("agent.report_interval", agent.report_interval_ms, "5s", 100, HOUR_MS, NULL,
        "how often the agent sends its node's GPUs to the scheduler"),
    STR("agent.ca_file", agent.ca_file, "", NULL, AF__KEY_OPTIONAL,
        "PEM CAs trusted for an https scheduler_url instead of the system store"),
    {{"serving.models", AF_CFG_MODELS, "[]", 0, 256, NULL, NULL, false,
      "models the LLM gateway serves, a list of {id, name, owned_by, max_tokens, pricing: "
      "{input_per_million, output_per_million} or {gpu_hourly}, backends: [{url (an "
      "OpenAI-compatible server) or simulated: true, id, model, api_key (secret), provider, "
      "connect_timeout, timeout, max_load, first_token, token_interval}]}; empty = two "
      "simulated models (docs/serving.md)"},
     OFF(serving.models),
     OFF(serving.n_models),
     0,
     0,
     NULL},
    UINT("serving.breaker.failures", serving.breaker_failures, "5", 1, 1000, NULL,
         "consecutive failed calls that open an instance's circuit breaker"),
    DUR("serving.breaker.cooldown", serving.breaker_cooldown_ms, "10s", 100, HOUR_MS, NULL,
        "how long an open breaker keeps calls away before one probe may go"),
    UINT("serving.connect_retries", serving.connect_retries, "2", 0, 10, NULL,
         "other instances tried when one cannot be connected to (never once a byte was "
         "relayed)"),
    UINT("serving.max_streams", serving.max_streams, "4096", 1, 1000000, NULL,
         "chat calls in progress at most; more are refused as overloaded"),
};

const size_t af__config_nkeys = sizeof(af__config_keys) / sizeof(af__config_keys[0]);
_Static_assert(sizeof(af__config_keys) / sizeof(af__config_keys[0]) <= AF__CONFIG_MAX_KEYS,
               "raise AF__CONFIG_MAX_KEYS");

const char *af_config_type_name(af_config_type t)
{
    switch (t) {
    case AF_CFG_STRING:
        return "string";
    case AF_CFG_BOOL:
        return "bool";
    case AF_CFG_RATIO:
        return "ratio";
    case AF_CFG_UINT:
        return "uint";
    case AF_CFG_DURATION:
        return "duration";
    case AF_CFG_MAP:
        return "map";
    case AF_CFG_KV_LIST:
        return "kv-list";
    case AF_CFG_ENUM:
        return "enum";
    case AF_CFG_INT:
        return "int";
    case AF_CFG_BYTES:
        return "bytes";
    case AF_CFG_LIST:
        return "list";
    case AF_CFG_MODELS:
        return "models";
    }
    return "?";
}

size_t af_config_key_count(void)
{
    return af__config_nkeys;
}

const af_config_key_info *af_config_key_at(size_t i)
{
    return i < af__config_nkeys ? &af__config_keys[i].info : NULL;
}

const af__config_key *af__config_key_lookup(const char *key, size_t len)
{
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *k = af__config_keys[i].info.key;
        if (strlen(k) == len && memcmp(k, key, len) == 0)
            return &af__config_keys[i];
    }
    return NULL;
}

const af_config_key_info *af_config_key_find(const char *dotted)
{
    if (!dotted)
        return NULL;
    const af__config_key *k = af__config_key_lookup(dotted, strlen(dotted));
    return k ? &k->info : NULL;
}

/* ---------------------------------------------------------------------------------------- */

static const af__config_key *row_of(const af_config_key_info *info)
{
    /* info is the first member of a row, so a pointer into the table converts back. */
    const af__config_key *k = (const af__config_key *)(const void *)info;
    return k >= af__config_keys && k < af__config_keys + af__config_nkeys ? k : NULL;
}

void af_config_key_bounds(const af_config_key_info *info, char *out, size_t out_len)
{
    const af__config_key *k = row_of(info);
    char lo[32], hi[32];
    if (!out || !out_len)
        return;
    out[0] = '\0';
    if (!k)
        return;
    switch (k->info.type) {
    case AF_CFG_UINT:
    case AF_CFG_INT:
    case AF_CFG_BYTES:
        snprintf(out, out_len, "%lld to %lld", (long long)k->info.min, (long long)k->info.max);
        break;
    case AF_CFG_DURATION:
        af_config_format_duration((uint32_t)k->info.min, lo, sizeof lo);
        af_config_format_duration((uint32_t)k->info.max, hi, sizeof hi);
        snprintf(out, out_len, "%s to %s", lo, hi);
        break;
    case AF_CFG_RATIO:
        snprintf(out, out_len, "0 to 1");
        break;
    case AF_CFG_MAP: /* values restricted to enum_values, when the row has them */
    case AF_CFG_ENUM: {
        size_t used = 0;
        for (size_t i = 0; k->info.enum_values && k->info.enum_values[i] && used < out_len; i++)
            used += (size_t)snprintf(out + used, out_len - used, "%s%s", i ? ", " : "",
                                     k->info.enum_values[i]);
        break;
    }
    case AF_CFG_STRING:
        if (k->flags & AF__KEY_URL)
            snprintf(out, out_len, "http:// or https:// URL");
        else if (k->maxlen)
            snprintf(out, out_len, "at most %zu bytes", k->maxlen);
        break;
    case AF_CFG_LIST:
        snprintf(out, out_len, "at most %lld entries of at most %zu bytes", (long long)k->info.max,
                 k->maxlen);
        break;
    case AF_CFG_MODELS:
        snprintf(out, out_len, "at most %lld models", (long long)k->info.max);
        break;
    case AF_CFG_BOOL:
    case AF_CFG_KV_LIST:
        break;
    }
}

int af_config_set(af_tracing_config *cfg, const char *key, const char *text, char *err,
                  size_t err_len)
{
    char why[256];
    if (!cfg || !key || !text)
        return -EINVAL;
    const af__config_key *k = af__config_key_lookup(key, strlen(key));
    if (!k || k->info.type == AF_CFG_MAP || k->info.type == AF_CFG_KV_LIST ||
        k->info.type == AF_CFG_LIST || k->info.type == AF_CFG_MODELS) {
        if (err && err_len)
            snprintf(err, err_len, "%s: %s", key, k ? "not a single value" : "unknown key");
        return -EINVAL;
    }
    int rc = af__config_set_scalar(cfg, k, text, why, sizeof why);
    if (rc == AF_EPARSE && err && err_len)
        snprintf(err, err_len, "%s", why);
    return rc;
}
