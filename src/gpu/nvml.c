/*
 * GPU backends: the generic vtable wrapper and the NVML backend.
 *
 * NVML is loaded with dlopen() and our own minimal prototypes (NVML's headers are not free
 * software, and a build must work on machines without a driver). Only init/shutdown/count/
 * handle are required; every other entry point is optional, and a missing symbol or an
 * NVML_ERROR_NOT_SUPPORTED answer just leaves that field invalid.
 */
#define AF_LOG_COMPONENT "gpu"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "gpu/gpu_int.h"
#include "util/env.h"
#include "util/str.h"

struct af_gpu_backend {
    const af_gpu_backend_ops *ops;
    void *self;
};

int af_gpu_backend_new(const af_gpu_backend_ops *ops, void *self, af_gpu_backend **out)
{
    int rc = -EINVAL;
    af_gpu_backend *b = NULL;
    if (!ops || !ops->device_count || !ops->sample || !out)
        goto fail;
    rc = -ENOMEM;
    b = calloc(1, sizeof(*b));
    if (!b)
        goto fail;
    b->ops = ops;
    b->self = self;
    *out = b;
    return 0;
fail:
    if (ops && ops->destroy && self)
        ops->destroy(self);
    if (out)
        *out = NULL;
    return rc;
}

void af_gpu_backend_free(af_gpu_backend *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->self);
    free(b);
}

const char *af_gpu_backend_name(const af_gpu_backend *b)
{
    return b->ops->name ? b->ops->name : "custom";
}

uint32_t af_gpu_backend_device_count(const af_gpu_backend *b)
{
    return b->ops->device_count(b->self);
}

int af_gpu_backend_sample(af_gpu_backend *b, uint32_t index, uint64_t now_ns, af_gpu_sample *out,
                          af_gpu_process *procs, size_t procs_cap, size_t *n_procs)
{
    *n_procs = 0;
    return b->ops->sample(b->self, index, now_ns, out, procs, procs_cap, n_procs);
}

void *af__gpu_backend_self(af_gpu_backend *b, const af_gpu_backend_ops *ops)
{
    return b && b->ops == ops ? b->self : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* NVML: the subset of nvml.h we use, with the documented ABI.                               */

typedef int nvml_return;
typedef struct nvml_device_st *nvml_device;
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_GRAPHICS 0
#define NVML_CLOCK_MEM 2

typedef struct nvml_memory {
    unsigned long long total, free, used; /* bytes */
} nvml_memory;

typedef struct nvml_utilization {
    unsigned int gpu, memory; /* percent */
} nvml_utilization;

/* nvmlProcessInfo_t as filled by the _v2 and _v3 process queries. */
typedef struct nvml_process_info {
    unsigned int pid;
    unsigned long long used_gpu_memory; /* bytes */
    unsigned int gpu_instance_id;
    unsigned int compute_instance_id;
} nvml_process_info;

typedef struct nvml_api {
    void *lib;
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    nvml_return (*count)(unsigned int *);
    nvml_return (*handle)(unsigned int, nvml_device *);
    const char *(*error_string)(nvml_return);
    nvml_return (*name)(nvml_device, char *, unsigned int);
    nvml_return (*uuid)(nvml_device, char *, unsigned int);
    nvml_return (*memory)(nvml_device, nvml_memory *);
    nvml_return (*utilization)(nvml_device, nvml_utilization *);
    nvml_return (*temperature)(nvml_device, int, unsigned int *);
    nvml_return (*power)(nvml_device, unsigned int *);
    nvml_return (*power_limit)(nvml_device, unsigned int *);
    nvml_return (*fan)(nvml_device, unsigned int *);
    nvml_return (*clock)(nvml_device, int, unsigned int *);
    nvml_return (*encoder)(nvml_device, unsigned int *, unsigned int *);
    nvml_return (*decoder)(nvml_device, unsigned int *, unsigned int *);
    nvml_return (*procs)(nvml_device, unsigned int *, nvml_process_info *);
} nvml_api;

typedef struct nvml_backend {
    nvml_api api;
    uint32_t count;
} nvml_backend;

static const char *nvml_err(const nvml_api *a, nvml_return r)
{
    const char *s = a->error_string ? a->error_string(r) : NULL;
    return s ? s : "NVML error";
}

static uint32_t nvml_count(void *self)
{
    return ((nvml_backend *)self)->count;
}

/* Process names come from /proc (NVML reports only pids); best effort. */
static void proc_name(unsigned int pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/comm", pid);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
    if (!out[0])
        af__strlcpy(out, "unknown", len);
}

/* Name, UUID, memory and utilization: each field NVML answers is set and marked valid. */
static void nvml_identity(nvml_api *a, nvml_device d, af_gpu_sample *o)
{
    char buf[AF_GPU_NAME_MAX];
    if (a->name && a->name(d, buf, sizeof(buf)) == NVML_SUCCESS)
        af__strlcpy(o->name, buf, sizeof(o->name));
    if (a->uuid && a->uuid(d, buf, sizeof(buf)) == NVML_SUCCESS)
        af__strlcpy(o->uuid, buf, sizeof(o->uuid));
    nvml_memory mem;
    if (a->memory && a->memory(d, &mem) == NVML_SUCCESS) {
        o->memory_total_mb = mem.total / (1024 * 1024);
        o->memory_used_mb = mem.used / (1024 * 1024);
        if (o->memory_used_mb > o->memory_total_mb)
            o->memory_used_mb = o->memory_total_mb;
        o->memory_free_mb = o->memory_total_mb - o->memory_used_mb;
        o->valid |= AF_GPU_F_MEMORY;
    }
    nvml_utilization u;
    if (a->utilization && a->utilization(d, &u) == NVML_SUCCESS) {
        o->utilization_gpu = u.gpu;
        o->utilization_memory = u.memory;
        o->valid |= AF_GPU_F_UTIL_GPU | AF_GPU_F_UTIL_MEMORY;
    }
}

/* Temperature, power, fan, clocks and the video engines, the same way. */
static void nvml_sensors(nvml_api *a, nvml_device d, af_gpu_sample *o)
{
    unsigned int v, period;
    if (a->temperature && a->temperature(d, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) {
        o->temperature = v;
        o->valid |= AF_GPU_F_TEMPERATURE;
    }
    if (a->power && a->power(d, &v) == NVML_SUCCESS) {
        o->power_draw = v / 1000.0; /* mW */
        o->valid |= AF_GPU_F_POWER_DRAW;
    }
    if (a->power_limit && a->power_limit(d, &v) == NVML_SUCCESS) {
        o->power_limit = v / 1000.0;
        o->valid |= AF_GPU_F_POWER_LIMIT;
    }
    if (a->fan && a->fan(d, &v) == NVML_SUCCESS) {
        o->fan_speed = v;
        o->valid |= AF_GPU_F_FAN;
    }
    if (a->clock && a->clock(d, NVML_CLOCK_GRAPHICS, &v) == NVML_SUCCESS) {
        o->clock_graphics = v;
        o->valid |= AF_GPU_F_CLOCK_GRAPHICS;
    }
    if (a->clock && a->clock(d, NVML_CLOCK_MEM, &v) == NVML_SUCCESS) {
        o->clock_memory = v;
        o->valid |= AF_GPU_F_CLOCK_MEMORY;
    }
    if (a->encoder && a->encoder(d, &v, &period) == NVML_SUCCESS) {
        o->encoder_utilization = v;
        o->valid |= AF_GPU_F_ENCODER;
    }
    if (a->decoder && a->decoder(d, &v, &period) == NVML_SUCCESS) {
        o->decoder_utilization = v;
        o->valid |= AF_GPU_F_DECODER;
    }
}

/* The processes on the device (names from /proc); *n_procs gets how many went to procs. */
static void nvml_processes(nvml_api *a, nvml_device d, af_gpu_sample *o, af_gpu_process *procs,
                           size_t procs_cap, size_t *n_procs)
{
    if (!a->procs)
        return;
    nvml_process_info info[AF_GPU_MAX_PROCESSES];
    unsigned int n = AF_GPU_MAX_PROCESSES;
    nvml_return r = a->procs(d, &n, info);
    if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE)
        return;
    if (n > AF_GPU_MAX_PROCESSES)
        n = AF_GPU_MAX_PROCESSES;
    o->process_count = n;
    o->valid |= AF_GPU_F_PROCESSES;
    for (unsigned int i = 0; i < n && i < procs_cap; i++) {
        af_gpu_process *p = &procs[i];
        memset(p, 0, sizeof(*p));
        p->pid = info[i].pid;
        /* NVML reports an "unavailable" sentinel (all ones) without privileges. */
        p->memory_used_mb =
            info[i].used_gpu_memory == ~0ULL ? 0 : info[i].used_gpu_memory / (1024 * 1024);
        p->type = 'C';
        proc_name(p->pid, p->process_name, sizeof(p->process_name));
        *n_procs = i + 1;
    }
}

static int nvml_sample(void *self, uint32_t index, uint64_t now_ns, af_gpu_sample *o,
                       af_gpu_process *procs, size_t procs_cap, size_t *n_procs)
{
    nvml_backend *nb = self;
    nvml_api *a = &nb->api;
    nvml_device d;
    (void)now_ns;
    nvml_return r = a->handle(index, &d);
    if (r != NVML_SUCCESS) {
        af_log(AF_LOG_WARN, "nvml: device %u: %s", index, nvml_err(a, r));
        return -EIO;
    }
    nvml_identity(a, d, o);
    nvml_sensors(a, d, o);
    nvml_processes(a, d, o, procs, procs_cap, n_procs);
    return 0;
}

static void nvml_destroy(void *self)
{
    nvml_backend *nb = self;
    if (nb->api.shutdown)
        nb->api.shutdown();
    if (nb->api.lib)
        dlclose(nb->api.lib);
    free(nb);
}

static const af_gpu_backend_ops nvml_ops = {
    .name = "nvml",
    .device_count = nvml_count,
    .sample = nvml_sample,
    .destroy = nvml_destroy,
};

/* dlsym into a function pointer without the object/function pointer conversion warning. */
static void load(void *lib, const char *name, void *fnptr)
{
    void *sym = dlsym(lib, name);
    memcpy(fnptr, &sym, sizeof(sym));
}

int af_gpu_backend_nvml_new(const char *library, af_gpu_backend **out, char *err, size_t err_len)
{
    *out = NULL;
    const char *path = library;
    if (!path || !path[0]) {
        path = getenv("AF_NVML_LIBRARY");
        if (!path || !path[0])
            path = AF_NVML_DEFAULT_LIBRARY;
    }
    nvml_backend *nb = calloc(1, sizeof(*nb));
    if (!nb)
        return -ENOMEM;
    nvml_api *a = &nb->api;
    int rc;
    a->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!a->lib) {
        const char *e = dlerror();
        af__gpu_err(err, err_len, "cannot load %s: %s", path, e ? e : "unknown error");
        rc = -ENOENT;
        goto fail;
    }
    load(a->lib, "nvmlInit_v2", &a->init);
    load(a->lib, "nvmlShutdown", &a->shutdown);
    load(a->lib, "nvmlDeviceGetCount_v2", &a->count);
    load(a->lib, "nvmlDeviceGetHandleByIndex_v2", &a->handle);
    if (!a->init || !a->shutdown || !a->count || !a->handle) {
        af__gpu_err(err, err_len, "%s lacks the NVML v2 entry points", path);
        a->shutdown = NULL; /* never initialised */
        rc = -ENOENT;
        goto fail;
    }
    load(a->lib, "nvmlErrorString", &a->error_string);
    load(a->lib, "nvmlDeviceGetName", &a->name);
    load(a->lib, "nvmlDeviceGetUUID", &a->uuid);
    load(a->lib, "nvmlDeviceGetMemoryInfo", &a->memory);
    load(a->lib, "nvmlDeviceGetUtilizationRates", &a->utilization);
    load(a->lib, "nvmlDeviceGetTemperature", &a->temperature);
    load(a->lib, "nvmlDeviceGetPowerUsage", &a->power);
    load(a->lib, "nvmlDeviceGetEnforcedPowerLimit", &a->power_limit);
    if (!a->power_limit)
        load(a->lib, "nvmlDeviceGetPowerManagementLimit", &a->power_limit);
    load(a->lib, "nvmlDeviceGetFanSpeed", &a->fan);
    load(a->lib, "nvmlDeviceGetClockInfo", &a->clock);
    load(a->lib, "nvmlDeviceGetEncoderUtilization", &a->encoder);
    load(a->lib, "nvmlDeviceGetDecoderUtilization", &a->decoder);
    load(a->lib, "nvmlDeviceGetComputeRunningProcesses_v3", &a->procs);
    if (!a->procs)
        load(a->lib, "nvmlDeviceGetComputeRunningProcesses_v2", &a->procs);
    nvml_return r = a->init();
    if (r != NVML_SUCCESS) {
        af__gpu_err(err, err_len, "nvmlInit failed: %s", nvml_err(a, r));
        a->shutdown = NULL;
        rc = -EIO;
        goto fail;
    }
    unsigned int n = 0;
    r = a->count(&n);
    if (r != NVML_SUCCESS || n == 0) {
        af__gpu_err(err, err_len, "NVML found no GPU%s%s", r ? ": " : "", r ? nvml_err(a, r) : "");
        rc = -ENODEV;
        goto fail;
    }
    nb->count = n;
    return af_gpu_backend_new(&nvml_ops, nb, out);
fail:
    nvml_destroy(nb);
    return rc;
}
