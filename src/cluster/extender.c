/*
 * The kube-scheduler extender's JSON (k8s.io/kube-scheduler/extender/v1) and the agent's report
 * body. Every rejection names the field, e.g. `pod.spec.containers[1].resources.limits
 * ["nvidia.com/gpu"]: expected a whole number of GPUs, got "two"`.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/cluster_int.h"
#include "util/buf.h"
#include "util/str.h"

#define GPU_RESOURCE "nvidia.com/gpu"
#define MEMORY_ANNOTATION "agentaflow.io/gpu-memory-mb"
#define TRACEPARENT_ANNOTATION "agentaflow.io/traceparent"
#define MAX_SHARE_MB (1ull << 30) /* a GiB of GiBs: anything above is a typo */

static json_t *load_object(const char *body, size_t len, char *err, size_t err_len)
{
    json_error_t e;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        af__cluster_err(err, err_len, "malformed JSON at line %d, column %d: %s", e.line, e.column,
                        e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        af__cluster_err(err, err_len, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/*
 * A member of an ExtenderArgs or ExtenderBindingArgs object. Those Go structs carry no json
 * tags, so kube-scheduler sends the field names as written ("Pod", "NodeNames", "PodUID");
 * Go's decoder matches keys case-insensitively, preferring an exact match, and so do we, so
 * the lower-case spelling of older extender docs and our own tests works as well.
 */
static json_t *args_member(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (v)
        return v;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (strcasecmp(key, k) == 0)
            return val;
    }
    return NULL;
}

/* A string member, or NULL when absent/null; -EINVAL when present with another type. */
static int opt_str(json_t *o, const char *k, const char *path, const char **out, char *err,
                   size_t err_len)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        af__cluster_err(err, err_len, "%s.%s: expected a string", path, k);
        return -EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

/* An object member, or NULL when absent/null; -EINVAL with another type. */
static int opt_obj(json_t *o, const char *k, const char *path, json_t **out, char *err,
                   size_t err_len)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        af__cluster_err(err, err_len, "%s.%s: expected an object", path, k);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* A decimal whole number in text (annotations and quantities are strings in Kubernetes). */
static bool parse_count(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Whole GPUs a container's limits ask for: a Quantity, "2" or 2. */
static int container_gpus(json_t *ctr, size_t i, uint32_t *sum, char *err, size_t err_len)
{
    if (!json_is_object(ctr)) {
        af__cluster_err(err, err_len, "pod.spec.containers[%zu]: expected an object", i);
        return -EINVAL;
    }
    char path[96];
    snprintf(path, sizeof(path), "pod.spec.containers[%zu]", i);
    json_t *res, *lim;
    if (opt_obj(ctr, "resources", path, &res, err, err_len))
        return -EINVAL;
    if (!res)
        return 0;
    snprintf(path, sizeof(path), "pod.spec.containers[%zu].resources", i);
    if (opt_obj(res, "limits", path, &lim, err, err_len))
        return -EINVAL;
    json_t *q = lim ? json_object_get(lim, GPU_RESOURCE) : NULL;
    if (!q || json_is_null(q))
        return 0;
    uint64_t n = 0;
    bool ok = json_is_integer(q)
                  ? (json_integer_value(q) >= 0 &&
                     (n = (uint64_t)json_integer_value(q)) <= AF_CLUSTER_GPUS_PER_NODE_MAX)
                  : parse_count(json_string_value(q), AF_CLUSTER_GPUS_PER_NODE_MAX, &n);
    if (!ok) {
        af__cluster_err(err, err_len,
                        "pod.spec.containers[%zu].resources.limits[\"" GPU_RESOURCE
                        "\"]: expected a whole number of GPUs from 0 to %d",
                        i, AF_CLUSTER_GPUS_PER_NODE_MAX);
        return -EINVAL;
    }
    *sum += (uint32_t)n;
    if (*sum > AF_CLUSTER_GPUS_PER_NODE_MAX) {
        af__cluster_err(err, err_len, "pod.spec.containers: more than %d GPUs in all",
                        AF_CLUSTER_GPUS_PER_NODE_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Reads ExtenderArgs.pod into *p (strings borrowed from j). */
static int parse_pod(json_t *j, af_cluster_pod *p, char *err, size_t err_len)
{
    memset(p, 0, sizeof(*p));
    json_t *pod = args_member(j, "pod");
    if (!pod || json_is_null(pod)) {
        af__cluster_err(err, err_len, "pod: required (a v1.Pod object)");
        return -EINVAL;
    }
    if (!json_is_object(pod)) {
        af__cluster_err(err, err_len, "pod: expected an object (a v1.Pod)");
        return -EINVAL;
    }
    json_t *meta, *spec, *ann;
    if (opt_obj(pod, "metadata", "pod", &meta, err, err_len) ||
        opt_obj(pod, "spec", "pod", &spec, err, err_len))
        return -EINVAL;
    if (meta && (opt_str(meta, "name", "pod.metadata", &p->name, err, err_len) ||
                 opt_str(meta, "namespace", "pod.metadata", &p->namespace_, err, err_len) ||
                 opt_str(meta, "uid", "pod.metadata", &p->uid, err, err_len) ||
                 opt_obj(meta, "annotations", "pod.metadata", &ann, err, err_len)))
        return -EINVAL;
    if (!meta)
        ann = NULL;
    if (!p->namespace_)
        p->namespace_ = "default";
    const char *fields[] = {p->name, p->namespace_, p->uid};
    for (size_t i = 0; i < 3; i++)
        if (fields[i] && strlen(fields[i]) >= AF_CLUSTER_NODE_MAX) {
            af__cluster_err(err, err_len, "pod.metadata.%s: longer than %d bytes",
                            i == 0   ? "name"
                            : i == 1 ? "namespace"
                                     : "uid",
                            AF_CLUSTER_NODE_MAX - 1);
            return -EINVAL;
        }
    if (ann) {
        const char *mem = NULL;
        json_t *v = json_object_get(ann, MEMORY_ANNOTATION);
        if (v && !json_is_null(v)) {
            mem = json_string_value(v);
            if (!parse_count(mem, MAX_SHARE_MB, &p->memory_mb) || !p->memory_mb) {
                af__cluster_err(err, err_len,
                                "pod.metadata.annotations[\"" MEMORY_ANNOTATION
                                "\"]: expected a whole number of MiB from 1 to %llu as a string",
                                (unsigned long long)MAX_SHARE_MB);
                return -EINVAL;
            }
        }
        v = json_object_get(ann, TRACEPARENT_ANNOTATION);
        if (v && json_is_string(v))
            p->traceparent = json_string_value(v);
    }
    if (spec) {
        json_t *prio = json_object_get(spec, "priority");
        if (prio && !json_is_null(prio)) {
            if (!json_is_integer(prio) || json_integer_value(prio) < INT32_MIN ||
                json_integer_value(prio) > INT32_MAX) {
                af__cluster_err(err, err_len, "pod.spec.priority: expected a 32-bit integer");
                return -EINVAL;
            }
            p->priority = (int32_t)json_integer_value(prio);
        }
        json_t *ctrs = json_object_get(spec, "containers");
        if (ctrs && !json_is_null(ctrs)) {
            if (!json_is_array(ctrs)) {
                af__cluster_err(err, err_len, "pod.spec.containers: expected an array");
                return -EINVAL;
            }
            for (size_t i = 0; i < json_array_size(ctrs); i++)
                if (container_gpus(json_array_get(ctrs, i), i, &p->gpus, err, err_len))
                    return -EINVAL;
        }
    }
    return 0;
}

/* The candidates: nodenames ([]string, nodeCacheCapable) or nodes.items[].metadata.name.
 * *items is the NodeList's items array when that form was used (borrowed from j). */
static int parse_nodes(af_cluster *c, json_t *j, const char ***names, size_t *n, json_t **items,
                       char *err, size_t err_len)
{
    json_t *nn = args_member(j, "nodenames"), *nodes = args_member(j, "nodes");
    json_t *arr;
    *items = NULL;
    *names = NULL;
    *n = 0;
    bool by_name = nn && !json_is_null(nn);
    if (by_name) {
        if (!json_is_array(nn)) {
            af__cluster_err(err, err_len, "nodenames: expected an array of node names");
            return -EINVAL;
        }
        arr = nn;
    } else if (nodes && !json_is_null(nodes)) {
        if (!json_is_object(nodes)) {
            af__cluster_err(err, err_len, "nodes: expected an object (a v1.NodeList)");
            return -EINVAL;
        }
        arr = json_object_get(nodes, "items");
        if (!arr || json_is_null(arr)) {
            return 0; /* an empty list */
        }
        if (!json_is_array(arr)) {
            af__cluster_err(err, err_len, "nodes.items: expected an array");
            return -EINVAL;
        }
        *items = arr;
    } else {
        af__cluster_err(err, err_len, "nodes or nodenames: one of them is required");
        return -EINVAL;
    }
    size_t count = json_array_size(arr);
    uint32_t max = af__cluster_max_nodes(c);
    if (count > max) {
        af__cluster_err(err, err_len, "%s: %zu nodes, more than the %u allowed (cluster.max_nodes)",
                        by_name ? "nodenames" : "nodes.items", count, max);
        return -EINVAL;
    }
    const char **out = count ? malloc(count * sizeof(*out)) : NULL;
    if (count && !out)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        json_t *v = json_array_get(arr, i);
        const char *s = NULL;
        if (by_name) {
            s = json_string_value(v);
        } else if (json_is_object(v)) {
            json_t *m = json_object_get(v, "metadata");
            s = json_is_object(m) ? json_string_value(json_object_get(m, "name")) : NULL;
        }
        if (!s || !*s || strlen(s) >= AF_CLUSTER_NODE_MAX) {
            if (by_name)
                af__cluster_err(err, err_len,
                                "nodenames[%zu]: expected a node name of 1 to %d "
                                "bytes",
                                i, AF_CLUSTER_NODE_MAX - 1);
            else
                af__cluster_err(err, err_len,
                                "nodes.items[%zu].metadata.name: expected a node name of 1 to "
                                "%d bytes",
                                i, AF_CLUSTER_NODE_MAX - 1);
            free(out);
            return -EINVAL;
        }
        out[i] = s;
    }
    *names = out;
    *n = count;
    return 0;
}

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int af_cluster_filter_json(af_cluster *c, const char *body, size_t len, char **out, char *err,
                           size_t err_len)
{
    json_t *j = load_object(body, len, err, err_len);
    if (!j)
        return -EINVAL;
    af_cluster_pod pod;
    const char **names = NULL;
    size_t n = 0;
    json_t *items = NULL;
    af_cluster_verdict *v = NULL;
    int rc = parse_pod(j, &pod, err, err_len);
    if (rc == 0)
        rc = parse_nodes(c, j, &names, &n, &items, err, err_len);
    if (rc == 0 && n && !(v = malloc(n * sizeof(*v))))
        rc = -ENOMEM;
    if (rc == 0) {
        int fit = af_cluster_filter(c, &pod, names, n, v);
        rc = fit < 0 ? fit : 0;
    }
    json_t *res = NULL;
    if (rc == 0) {
        /* Every key of ExtenderFilterResult, in the shape the candidates came in. */
        json_t *keep = json_array(), *failed = json_object(), *unres = json_object();
        res = json_object();
        for (size_t i = 0; i < n; i++) {
            if (v[i].fits && items)
                json_array_append(keep, json_array_get(items, i));
            else if (v[i].fits)
                json_array_append_new(keep, json_string(names[i]));
            else
                json_object_set_new(v[i].unresolvable ? unres : failed, names[i],
                                    json_string(v[i].reason));
        }
        if (!items) {
            json_object_set_new(res, "nodes", json_null());
            json_object_set_new(res, "nodenames", keep);
        } else {
            json_t *list = json_object();
            json_object_set_new(list, "metadata", json_object());
            json_object_set_new(list, "items", keep);
            json_object_set_new(res, "nodes", list);
            json_object_set_new(res, "nodenames", json_null());
        }
        json_object_set_new(res, "failedNodes", failed);
        json_object_set_new(res, "failedAndUnresolvableNodes", unres);
        json_object_set_new(res, "error", json_string(""));
        if (!(*out = dump(res)))
            rc = -ENOMEM;
    }
    free(v);
    free(names);
    json_decref(j);
    return rc;
}

int af_cluster_prioritize_json(af_cluster *c, const char *body, size_t len, char **out,
                               af_cluster_hold_state *held, char *err, size_t err_len)
{
    if (held)
        memset(held, 0, sizeof(*held));
    json_t *j = load_object(body, len, err, err_len);
    if (!j)
        return -EINVAL;
    af_cluster_pod pod;
    const char **names = NULL;
    size_t n = 0;
    json_t *items = NULL;
    int64_t *scores = NULL;
    int rc = parse_pod(j, &pod, err, err_len);
    if (rc == 0)
        rc = parse_nodes(c, j, &names, &n, &items, err, err_len);
    if (rc == 0 && n && !(scores = malloc(n * sizeof(*scores))))
        rc = -ENOMEM;
    if (rc == 0)
        rc = af_cluster_prioritize(c, &pod, names, n, scores, NULL, 0);
    if (rc == 0 && held && (pod.gpus || pod.memory_mb)) {
        char key[AF_CLUSTER_NODE_MAX];
        af_cluster_pod_key(&pod, key, sizeof(key));
        af_cluster_hold_get(c, key, held); /* none (no node fits): held stays empty */
    }
    if (rc == 0) {
        /* HostPriorityList, written directly: it is the hot path of every GPU pod. */
        af_buf b;
        af__buf_init(&b);
        af__buf_putc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            af__buf_puts(&b, i ? ",{\"host\":" : "{\"host\":");
            af__buf_json_string(&b, names[i], strlen(names[i]));
            af__buf_printf(&b, ",\"score\":%lld}", (long long)scores[i]);
        }
        af__buf_putc(&b, ']');
        af__buf_terminate(&b);
        if (b.failed) {
            af__buf_clear(&b);
            rc = -ENOMEM;
        } else {
            *out = (char *)b.data;
        }
    }
    free(scores);
    free(names);
    json_decref(j);
    return rc;
}

int af_cluster_binding_args_parse(const char *body, size_t len, af_cluster_binding_args *out,
                                  char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    json_t *j = load_object(body, len, err, err_len);
    if (!j)
        return -EINVAL;
    struct {
        const char *key;
        char *dst;
        bool required;
    } f[] = {{"podName", out->pod_name, true},
             {"podNamespace", out->pod_namespace, true},
             {"podUID", out->pod_uid, false},
             {"node", out->node, true}};
    int rc = 0;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && rc == 0; i++) {
        json_t *v = args_member(j, f[i].key);
        const char *s = json_string_value(v);
        if ((!v || json_is_null(v)) && !f[i].required)
            continue;
        if (!s || (!*s && f[i].required) || strlen(s) >= AF_CLUSTER_NODE_MAX) {
            af__cluster_err(err, err_len, "%s: expected a %sstring of at most %d bytes", f[i].key,
                            f[i].required ? "non-empty " : "", AF_CLUSTER_NODE_MAX - 1);
            rc = -EINVAL;
            break;
        }
        af__strlcpy(f[i].dst, s, AF_CLUSTER_NODE_MAX);
    }
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Agent reports.                                                                            */

static int num_field(json_t *g, const char *k, size_t i, bool required, double max, double *out,
                     char *err, size_t err_len)
{
    json_t *v = json_object_get(g, k);
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        af__cluster_err(err, err_len, "gpus[%zu].%s: required", i, k);
        return -EINVAL;
    }
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > max) {
        af__cluster_err(err, err_len, "gpus[%zu].%s: expected a number from 0 to %g", i, k, max);
        return -EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

/* A parsed report body: the GPUs, with room for every GPU's processes in procs. */
typedef struct parsed_report {
    json_t *j;
    const char *node; /* borrowed from j */
    af_cluster_gpu *gpus;
    af_gpu_process *procs;
    size_t n;
} parsed_report;

static void parsed_free(parsed_report *p)
{
    free(p->gpus);
    free(p->procs);
    json_decref(p->j);
    memset(p, 0, sizeof(*p));
}

/* A report GPU's "health": absent or "healthy", "warning" or "critical". */
static int report_health(json_t *g, size_t i, af_gpu_level *out, char *err, size_t err_len)
{
    const char *h = json_string_value(json_object_get(g, "health"));
    if (!h || !strcmp(h, "healthy"))
        *out = AF_GPU_HEALTHY;
    else if (!strcmp(h, "warning"))
        *out = AF_GPU_WARNING;
    else if (!strcmp(h, "critical"))
        *out = AF_GPU_CRITICAL;
    else {
        af__cluster_err(err, err_len,
                        "gpus[%zu].health: expected \"healthy\", \"warning\" or \"critical\"", i);
        return -EINVAL;
    }
    return 0;
}

/* A report GPU's optional "processes" into o, whose room is procs (AF_GPU_MAX_PROCESSES). */
static int report_processes(json_t *g, size_t i, af_cluster_gpu *o, af_gpu_process *procs,
                            char *err, size_t err_len)
{
    json_t *pl = json_object_get(g, "processes");
    if (!pl || json_is_null(pl))
        return 0;
    if (!json_is_array(pl) || json_array_size(pl) > AF_GPU_MAX_PROCESSES) {
        af__cluster_err(err, err_len,
                        "gpus[%zu].processes: expected an array of at "
                        "most %d processes",
                        i, AF_GPU_MAX_PROCESSES);
        return -EINVAL;
    }
    o->procs = procs;
    o->n_procs = (uint32_t)json_array_size(pl);
    for (size_t k = 0; k < o->n_procs; k++) {
        json_t *pr = json_array_get(pl, k);
        json_int_t pid = json_integer_value(json_object_get(pr, "pid"));
        json_int_t mem = json_integer_value(json_object_get(pr, "memory_used_mb"));
        if (!json_is_object(pr) || pid < 0 || pid > UINT32_MAX || mem < 0) {
            af__cluster_err(err, err_len,
                            "gpus[%zu].processes[%zu]: expected {pid, name, "
                            "memory_used_mb} with non-negative numbers",
                            i, k);
            return -EINVAL;
        }
        o->procs[k].pid = (uint32_t)pid;
        o->procs[k].memory_used_mb = (uint64_t)mem;
        o->procs[k].type = 'C';
        const char *pn = json_string_value(json_object_get(pr, "name"));
        af__strlcpy(o->procs[k].process_name, pn ? pn : "", sizeof(o->procs[k].process_name));
    }
    return 0;
}

/* gpus[i] of a report into o, with procs as its processes' room. */
static int report_gpu(json_t *g, size_t i, af_cluster_gpu *o, af_gpu_process *procs, char *err,
                      size_t err_len)
{
    if (!json_is_object(g)) {
        af__cluster_err(err, err_len, "gpus[%zu]: expected an object", i);
        return -EINVAL;
    }
    int rc;
    double idx = i, tot = 0, used = 0, fr = 0;
    if ((rc = num_field(g, "index", i, false, AF_CLUSTER_GPUS_PER_NODE_MAX - 1, &idx, err,
                        err_len)) ||
        (rc = num_field(g, "memory_total_mb", i, true, 1e12, &tot, err, err_len)) ||
        (rc = num_field(g, "memory_used_mb", i, false, 1e12, &used, err, err_len)) ||
        (rc = num_field(g, "memory_free_mb", i, false, 1e12, &fr, err, err_len)) ||
        (rc = num_field(g, "utilization", i, false, 100, &o->utilization, err, err_len)) ||
        (rc = num_field(g, "temperature", i, false, 1000, &o->temperature, err, err_len)) ||
        (rc = num_field(g, "power_draw", i, false, 1e6, &o->power_draw, err, err_len)))
        return rc;
    o->index = (uint32_t)idx;
    o->memory_total_mb = (uint64_t)tot;
    o->memory_used_mb = (uint64_t)used;
    o->memory_free_mb = (uint64_t)fr;
    json_t *name = json_object_get(g, "name");
    if (json_is_string(name))
        af__strlcpy(o->name, json_string_value(name), sizeof(o->name));
    if ((rc = report_health(g, i, &o->health, err, err_len)))
        return rc;
    return report_processes(g, i, o, procs, err, err_len);
}

/* A report's top level: "node" a string, "gpus" an array of at most the per-node maximum. */
static int report_shape(json_t *node, json_t *arr, char *err, size_t err_len)
{
    if (!json_is_string(node)) {
        af__cluster_err(err, err_len, "node: required, a string");
        return -EINVAL;
    }
    if (!json_is_array(arr)) {
        af__cluster_err(err, err_len, "gpus: required, an array");
        return -EINVAL;
    }
    if (json_array_size(arr) > AF_CLUSTER_GPUS_PER_NODE_MAX) {
        af__cluster_err(err, err_len, "gpus: at most %d GPUs per node, got %zu",
                        AF_CLUSTER_GPUS_PER_NODE_MAX, json_array_size(arr));
        return -EINVAL;
    }
    return 0;
}

/* Parses and checks a report body's shape (the values are checked by
 * af_cluster_report_nodes). 0, -EINVAL with the field in err, or -ENOMEM; p is freed by
 * parsed_free either way. */
static int parse_report(const char *body, size_t len, parsed_report *p, char *err, size_t err_len)
{
    memset(p, 0, sizeof(*p));
    json_t *j = p->j = load_object(body, len, err, err_len);
    if (!j)
        return -EINVAL;
    json_t *node = json_object_get(j, "node"), *arr = json_object_get(j, "gpus");
    int rc = report_shape(node, arr, err, err_len);
    size_t n = rc ? 0 : json_array_size(arr);
    af_cluster_gpu *gpus = NULL;
    af_gpu_process *procs = NULL;
    if (n && (!(gpus = calloc(n, sizeof(*gpus))) ||
              !(procs = calloc(n * AF_GPU_MAX_PROCESSES, sizeof(*procs)))))
        rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = report_gpu(json_array_get(arr, i), i, &gpus[i], &procs[i * AF_GPU_MAX_PROCESSES], err,
                        err_len);
    p->node = json_string_value(node);
    p->gpus = gpus;
    p->procs = procs;
    p->n = n;
    return rc;
}

int af_cluster_report_json(af_cluster *c, const char *body, size_t len, char *err, size_t err_len)
{
    parsed_report p;
    int rc = parse_report(body, len, &p, err, err_len);
    if (rc == 0) {
        af_cluster_report r = {p.node, p.gpus, p.n};
        rc = af_cluster_report_nodes(c, &r, err, err_len);
    }
    parsed_free(&p);
    return rc;
}

int af_cluster_node_state_parse(const char *body, size_t len, uint64_t last_report_ns,
                                af_cluster_node_state *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    parsed_report p;
    int rc = parse_report(body, len, &p, err, err_len);
    if (rc == 0 && af__strlcpy(out->name, p.node, sizeof(out->name)) >= sizeof(out->name)) {
        af__cluster_err(err, err_len, "node: longer than %d bytes", AF_CLUSTER_NODE_MAX - 1);
        rc = -EINVAL;
    }
    if (rc == 0 && p.n && !(out->gpus = calloc(p.n, sizeof(*out->gpus))))
        rc = -ENOMEM;
    /* Each GPU's processes in their own allocation, as af_cluster_state_free expects. */
    for (size_t i = 0; rc == 0 && i < p.n; i++, out->n_gpus = i) {
        out->gpus[i] = p.gpus[i];
        out->gpus[i].procs = NULL;
        size_t sz = p.gpus[i].n_procs * sizeof(af_gpu_process);
        if (sz && !(out->gpus[i].procs = malloc(sz))) {
            out->gpus[i].n_procs = 0;
            rc = -ENOMEM;
        } else if (sz) {
            memcpy(out->gpus[i].procs, p.gpus[i].procs, sz);
        }
    }
    out->last_report_ns = last_report_ns;
    parsed_free(&p);
    if (rc != 0) {
        for (size_t i = 0; i < out->n_gpus; i++)
            free(out->gpus[i].procs);
        free(out->gpus);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* NaN or infinity would make the body invalid JSON. */
static double fin(double v)
{
    return isfinite(v) ? v : 0;
}

int af_cluster_report_body(const af_cluster_report *r, char **out)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"node\":");
    af__buf_json_string(&b, r->node, strlen(r->node));
    af__buf_puts(&b, ",\"gpus\":[");
    for (size_t i = 0; i < r->n_gpus; i++) {
        const af_cluster_gpu *g = &r->gpus[i];
        af__buf_printf(&b, "%s{\"index\":%u,\"name\":", i ? "," : "", g->index);
        af__buf_json_string(&b, g->name, strlen(g->name));
        af__buf_printf(&b,
                       ",\"memory_total_mb\":%llu,\"memory_used_mb\":%llu,\"memory_free_mb\":%llu,"
                       "\"utilization\":%.3f,\"temperature\":%.3f,\"power_draw\":%.3f,"
                       "\"health\":\"%s\",\"processes\":[",
                       (unsigned long long)g->memory_total_mb,
                       (unsigned long long)g->memory_used_mb, (unsigned long long)g->memory_free_mb,
                       fin(g->utilization), fin(g->temperature), fin(g->power_draw),
                       af_gpu_level_name(g->health));
        for (uint32_t k = 0; k < g->n_procs; k++) {
            af__buf_printf(&b, "%s{\"pid\":%u,\"name\":", k ? "," : "", g->procs[k].pid);
            af__buf_json_string(&b, g->procs[k].process_name, strlen(g->procs[k].process_name));
            af__buf_printf(&b, ",\"memory_used_mb\":%llu}",
                           (unsigned long long)g->procs[k].memory_used_mb);
        }
        af__buf_puts(&b, "]}");
    }
    af__buf_puts(&b, "]}");
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}
