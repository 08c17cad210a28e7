/*
 * A fake libnvidia-ml: exports the NVML entry points the NVML backend uses, with fixed
 * values, so the dlopen path is tested on machines without a GPU. Device 0 supports
 * everything; device 1 answers NVML_ERROR_NOT_SUPPORTED for fan speed, encoder and decoder.
 * FAKE_NVML_DEVICES overrides the device count (e.g. 0 to test "no device").
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct nvml_device_st *nvmlDevice_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

#define OK 0
#define UNINITIALIZED 1
#define INVALID_ARGUMENT 2
#define NOT_SUPPORTED 3
#define INSUFFICIENT_SIZE 7

/* Exported with C linkage; prototypes keep -Wmissing-prototypes quiet. */
int nvmlInit_v2(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int r);
int nvmlDeviceGetCount_v2(unsigned int *n);
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d);
int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int len);
int nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int len);
int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u);
int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t);
int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw);
int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw);
int nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned int *pct);
int nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz);
int nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *u, unsigned int *period);
int nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *u, unsigned int *period);
int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n,
                                            nvmlProcessInfo_t *infos);

static int inited;
/* Handles are just distinct addresses. */
static char devices[2];

static int idx(nvmlDevice_t d)
{
    return (char *)d == &devices[1] ? 1 : 0;
}

int nvmlInit_v2(void)
{
    inited++;
    return OK;
}

int nvmlShutdown(void)
{
    if (!inited)
        return UNINITIALIZED;
    inited--;
    return OK;
}

const char *nvmlErrorString(int r)
{
    return r == NOT_SUPPORTED ? "Not Supported" : "Fake NVML error";
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    const char *e = getenv("FAKE_NVML_DEVICES");
    *n = e ? (unsigned int)atoi(e) : 2;
    return inited ? OK : UNINITIALIZED;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (i > 1)
        return INVALID_ARGUMENT;
    *d = (nvmlDevice_t)(void *)&devices[i];
    return OK;
}

int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int len)
{
    const char *name = idx(d) ? "Fake Tesla T4" : "Fake H100 80GB HBM3";
    if (len <= strlen(name))
        return INSUFFICIENT_SIZE;
    strcpy(buf, name);
    return OK;
}

int nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int len)
{
    const char *u = idx(d) ? "GPU-00000000-0000-0000-0000-000000000001"
                           : "GPU-00000000-0000-0000-0000-000000000000";
    if (len <= strlen(u))
        return INSUFFICIENT_SIZE;
    strcpy(buf, u);
    return OK;
}

int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    m->total = (idx(d) ? 16384ULL : 81920ULL) << 20;
    m->used = 4096ULL << 20;
    m->free = m->total - m->used;
    return OK;
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    u->gpu = idx(d) ? 5 : 87;
    u->memory = idx(d) ? 1 : 42;
    return OK;
}

int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t)
{
    if (sensor != 0)
        return INVALID_ARGUMENT;
    *t = idx(d) ? 41 : 78;
    return OK;
}

int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw)
{
    *mw = idx(d) ? 27500 : 612250;
    return OK;
}

int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw)
{
    *mw = idx(d) ? 70000 : 700000;
    return OK;
}

int nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned int *pct)
{
    if (idx(d))
        return NOT_SUPPORTED;
    *pct = 55;
    return OK;
}

int nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz)
{
    (void)d;
    *mhz = type == 2 ? 2619 : 1755;
    return OK;
}

int nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *u, unsigned int *period)
{
    if (idx(d))
        return NOT_SUPPORTED;
    *u = 12;
    *period = 167000;
    return OK;
}

int nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *u, unsigned int *period)
{
    if (idx(d))
        return NOT_SUPPORTED;
    *u = 7;
    *period = 167000;
    return OK;
}

int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n,
                                            nvmlProcessInfo_t *infos)
{
    if (idx(d)) {
        *n = 0;
        return OK;
    }
    if (*n < 1) {
        *n = 1;
        return INSUFFICIENT_SIZE;
    }
    *n = 1;
    infos[0].pid = (unsigned int)getpid(); /* so the name can be read back from /proc */
    infos[0].usedGpuMemory = 2048ULL << 20;
    infos[0].gpuInstanceId = infos[0].computeInstanceId = 0;
    return OK;
}
