/*
 * Simulated GPU backend: the original mock collector's fleet and workload patterns, made
 * deterministic (one seeded PRNG stream per GPU, time measured from the first sample) and
 * bounded: utilization and memory stay inside the pattern's range (the original added a base
 * utilization on top, so "Idle" ran at 10-45 %, and let memory exceed 100 %), temperature
 * follows its target with thermal inertia, power is capped at the limit, fan and clocks follow
 * temperature. Simulation speed scales pattern durations as well as the waveforms.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_int.h"
#include "util/str.h"

static const char *const gpu_names[] = {
    "NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4080", "NVIDIA GeForce RTX 4070 Ti",
    "NVIDIA Tesla V100",       "NVIDIA A100-SXM4-40GB",   "NVIDIA H100 80GB HBM3",
    "NVIDIA GeForce RTX 3080", "NVIDIA GeForce RTX 3090", "NVIDIA Quadro RTX 6000",
};
static const uint64_t gpu_memory_mb[] = {24576, 16384, 12288, 32768, 40960,
                                         81920, 10240, 24576, 24576};
#define N_MODELS (sizeof(gpu_names) / sizeof(gpu_names[0]))

typedef struct pattern {
    const char *name;
    double dur_min, dur_max; /* seconds */
    double util_min, util_max;
    double mem_min, mem_max; /* % of total */
    double temp_inc, power_inc;
} pattern;

static const pattern patterns[] = {
    {"Idle", 30, 89, 0, 15, 5, 20, 0, 0},
    {"Light Inference", 45, 134, 20, 45, 30, 55, 8, 50},
    {"Training", 120, 419, 70, 98, 75, 95, 20, 120},
    {"Heavy Inference", 60, 179, 45, 75, 50, 70, 12, 80},
    {"Batch Processing", 180, 419, 85, 100, 80, 98, 25, 150},
};
#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static const char *const proc_names[] = {
    "python",        "pytorch_training", "tensorflow_serve", "cuda_inference",
    "blender",       "obs-studio",       "chrome",           "firefox",
    "nvenc_encoder", "stable_diffusion", "llama_inference",  "whisper_transcribe",
};
#define N_PROC_NAMES (sizeof(proc_names) / sizeof(proc_names[0]))

typedef struct sim_gpu {
    uint64_t rng[2];
    double util_var, base_temp, temp_var, power_limit, base_power, fan_base;
    uint32_t clock_g, clock_m;
    double durations[N_PATTERNS];
    uint32_t pat;
    uint32_t procs_pat; /* pattern the process list was made for */
    double pat_start;   /* simulated seconds */
    uint32_t uuid_tag;
    double temp; /* current, for inertia */
    double last_e;
    bool started;
    uint32_t n_procs;
    af_gpu_process procs[6];
    double share[6]; /* fraction of the used memory each process holds (sum <= 1) */
} sim_gpu;

typedef struct sim {
    pthread_mutex_t mu; /* sampling vs. pattern changes from other threads */
    uint32_t n;
    double speed;
    uint64_t t0_ns;
    bool t0_set;
    sim_gpu *g;
} sim;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* xoroshiro128+: uniform double in [0, 1). */
static double rnd(sim_gpu *g)
{
    uint64_t s0 = g->rng[0], s1 = g->rng[1];
    uint64_t r = s0 + s1;
    s1 ^= s0;
    g->rng[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    g->rng[1] = (s1 << 37) | (s1 >> 27);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

static double uni(sim_gpu *g, double a, double b)
{
    return a + (b - a) * rnd(g);
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void af_gpu_sim_opts_init(af_gpu_sim_opts *o)
{
    o->gpus = 4;
    o->seed = 1;
    o->speed = 1.0;
}

static uint32_t sim_count(void *self)
{
    return ((sim *)self)->n;
}

static void regen_procs(sim_gpu *g, bool idle)
{
    uint32_t n = idle ? (uint32_t)(rnd(g) * 2) : (uint32_t)(rnd(g) * 6);
    g->n_procs = n;
    double left = 1.0;
    for (uint32_t i = 0; i < n; i++) {
        af_gpu_process *p = &g->procs[i];
        memset(p, 0, sizeof(*p));
        p->pid = 1000 + (uint32_t)(rnd(g) * 30000);
        af__strlcpy(p->process_name, proc_names[(size_t)(rnd(g) * N_PROC_NAMES) % N_PROC_NAMES],
                    sizeof(p->process_name));
        p->type = rnd(g) < 0.3 ? 'G' : 'C';
        /* Processes share the used memory, so their sum never exceeds it. */
        g->share[i] = i + 1 == n ? left : left * uni(g, 0.2, 0.6);
        left -= g->share[i];
    }
}

/* One reading of a simulated GPU: what the sample reports. */
typedef struct sim_reading {
    double util, temp, power, fan, clock_g;
    uint64_t total, used; /* MiB */
} sim_reading;

/* Moves GPU index's simulation to e seconds (simulated time) and takes its reading: the
 * workload pattern, then utilization, memory, temperature (with thermal lag), power, fan,
 * clock throttling and now and then a new process list. Caller holds S->mu. */
static void sim_advance(sim_gpu *g, uint32_t index, double e, sim_reading *r)
{
    /* Pattern switches (several if a long gap passed). */
    while (e - g->pat_start >= g->durations[g->pat]) {
        g->pat_start += g->durations[g->pat];
        g->pat = (g->pat + 1) % N_PATTERNS;
    }
    const pattern *p = &patterns[g->pat];

    double span = p->util_max - p->util_min;
    double util = (p->util_min + p->util_max) / 2 + sin(e / 60.0) * span * 0.25 +
                  (rnd(g) - 0.5) * span * 0.4 * (g->util_var / 12.0);
    util = clampd(util, p->util_min, p->util_max);

    double mspan = p->mem_max - p->mem_min;
    double memp =
        (p->mem_min + p->mem_max) / 2 + cos(e / 45.0) * mspan * 0.3 + (rnd(g) - 0.5) * mspan * 0.2;
    memp = clampd(memp, p->mem_min, p->mem_max > 100 ? 100 : p->mem_max);
    uint64_t total = gpu_memory_mb[index % N_MODELS];
    uint64_t used = (uint64_t)((double)total * memp / 100.0);
    if (used > total)
        used = total;

    double target =
        g->base_temp + p->temp_inc + util / 100.0 * 25.0 + sin(e / 30.0) * g->temp_var * 0.3;
    if (!g->started) {
        g->temp = target;
    } else {
        double dt = e - g->last_e;
        g->temp += (target - g->temp) * (1.0 - exp(-dt / 20.0)); /* 20 s thermal constant */
    }
    double temp = clampd(g->temp + (rnd(g) - 0.5) * 1.0, 25.0, 95.0);

    double power = g->base_power + p->power_inc +
                   util / 100.0 * (g->power_limit - g->base_power) * 0.8 + (rnd(g) - 0.5) * 15.0;
    power = clampd(power, g->base_power * 0.5, g->power_limit);

    double fan = g->fan_base + (temp > 60 ? 2.0 * (temp - 60) : 0);
    fan = clampd(fan, 0, 100);
    double clock_g = g->clock_g;
    if (temp > 80)
        clock_g *= 0.95 - (temp - 80) * 0.01;

    if (!g->started || rnd(g) < 0.1 || g->procs_pat != g->pat) {
        regen_procs(g, g->pat == 0);
        g->procs_pat = g->pat;
    }
    g->started = true;
    g->last_e = e;
    r->util = util;
    r->total = total;
    r->used = used;
    r->temp = temp;
    r->power = power;
    r->fan = fan;
    r->clock_g = clock_g;
}

/* Writes a reading into the sample and the process list (each process's memory its share of
 * the used memory). */
static void sim_fill(const sim_gpu *g, uint32_t index, const sim_reading *r, af_gpu_sample *o,
                     af_gpu_process *procs, size_t procs_cap, size_t *n_procs)
{
    af__strlcpy(o->name, gpu_names[index % N_MODELS], sizeof(o->name));
    snprintf(o->uuid, sizeof(o->uuid), "GPU-sim-%08x-%04u", g->uuid_tag, index);
    o->valid = AF_GPU_F_UTIL_GPU | AF_GPU_F_UTIL_MEMORY | AF_GPU_F_MEMORY | AF_GPU_F_TEMPERATURE |
               AF_GPU_F_POWER_DRAW | AF_GPU_F_POWER_LIMIT | AF_GPU_F_FAN | AF_GPU_F_CLOCK_GRAPHICS |
               AF_GPU_F_CLOCK_MEMORY | AF_GPU_F_ENCODER | AF_GPU_F_DECODER | AF_GPU_F_PROCESSES;
    o->utilization_gpu = r->util;
    o->utilization_memory = clampd(r->util * 0.7, 0, 100);
    o->memory_total_mb = r->total;
    o->memory_used_mb = r->used;
    o->memory_free_mb = r->total - r->used;
    o->temperature = r->temp;
    o->power_draw = r->power;
    o->power_limit = g->power_limit;
    o->fan_speed = r->fan;
    o->clock_graphics = (uint32_t)r->clock_g;
    o->clock_memory = g->clock_m;
    o->encoder_utilization = r->util * 0.3;
    o->decoder_utilization = r->util * 0.2;
    o->process_count = g->n_procs;
    for (uint32_t i = 0; i < g->n_procs && i < procs_cap; i++) {
        procs[i] = g->procs[i];
        procs[i].memory_used_mb = (uint64_t)((double)r->used * g->share[i]);
        *n_procs = i + 1;
    }
}

static int sim_sample(void *self, uint32_t index, uint64_t now_ns, af_gpu_sample *o,
                      af_gpu_process *procs, size_t procs_cap, size_t *n_procs)
{
    sim *S = self;
    if (index >= S->n)
        return -ENOENT;
    pthread_mutex_lock(&S->mu);
    sim_gpu *g = &S->g[index];
    if (!S->t0_set) {
        S->t0_ns = now_ns;
        S->t0_set = true;
    }
    double e = now_ns > S->t0_ns ? (double)(now_ns - S->t0_ns) / 1e9 * S->speed : 0;
    if (e < g->last_e)
        e = g->last_e; /* a clock step back never rewinds the simulation */

    sim_reading r;
    sim_advance(g, index, e, &r);
    sim_fill(g, index, &r, o, procs, procs_cap, n_procs);
    pthread_mutex_unlock(&S->mu);
    return 0;
}

static void sim_destroy(void *self)
{
    sim *S = self;
    pthread_mutex_destroy(&S->mu);
    free(S->g);
    free(S);
}

static const af_gpu_backend_ops sim_ops = {
    .name = "simulated",
    .device_count = sim_count,
    .sample = sim_sample,
    .destroy = sim_destroy,
};

int af_gpu_backend_simulated_new(const af_gpu_sim_opts *opts, af_gpu_backend **out)
{
    af_gpu_sim_opts def;
    if (!opts) {
        af_gpu_sim_opts_init(&def);
        opts = &def;
    }
    *out = NULL;
    if (opts->gpus == 0 || opts->gpus > 4096 || !(opts->speed > 0) || !isfinite(opts->speed))
        return -EINVAL;
    sim *S = calloc(1, sizeof(*S));
    if (!S)
        return -ENOMEM;
    S->g = calloc(opts->gpus, sizeof(*S->g));
    if (!S->g) {
        free(S);
        return -ENOMEM;
    }
    pthread_mutex_init(&S->mu, NULL);
    S->n = opts->gpus;
    S->speed = opts->speed;
    for (uint32_t i = 0; i < S->n; i++) {
        sim_gpu *g = &S->g[i];
        uint64_t x = opts->seed ^ ((uint64_t)(i + 1) * 0xd1342543de82ef95ULL);
        g->rng[0] = splitmix(&x);
        g->rng[1] = splitmix(&x) | 1;
        g->uuid_tag = (uint32_t)splitmix(&x);
        /* The original's per-GPU configuration ranges. */
        g->util_var = uni(g, 5, 19);
        g->base_temp = uni(g, 35, 49);
        g->temp_var = uni(g, 5, 14);
        g->power_limit = floor(uni(g, 250, 449));
        g->base_power = floor(uni(g, 50, 149));
        g->fan_base = uni(g, 20, 39);
        g->clock_g = (uint32_t)uni(g, 1200, 1999);
        g->clock_m = (uint32_t)uni(g, 8000, 11999);
        for (size_t k = 0; k < N_PATTERNS; k++)
            g->durations[k] = floor(uni(g, patterns[k].dur_min, patterns[k].dur_max + 1));
    }
    return af_gpu_backend_new(&sim_ops, S, out);
}

int af_gpu_sim_set_pattern(af_gpu_backend *b, uint32_t index, const char *pattern_name)
{
    sim *S = af__gpu_backend_self(b, &sim_ops);
    if (!S)
        return -EINVAL;
    if (index >= S->n || !pattern_name)
        return -ENOENT;
    for (uint32_t k = 0; k < N_PATTERNS; k++) {
        if (strcmp(patterns[k].name, pattern_name) == 0) {
            pthread_mutex_lock(&S->mu);
            S->g[index].pat = k;
            S->g[index].pat_start = S->g[index].last_e;
            pthread_mutex_unlock(&S->mu);
            return 0;
        }
    }
    return -ENOENT;
}

const char *af_gpu_sim_pattern(af_gpu_backend *b, uint32_t index)
{
    sim *S = af__gpu_backend_self(b, &sim_ops);
    if (!S || index >= S->n)
        return "Unknown";
    pthread_mutex_lock(&S->mu);
    const char *name = patterns[S->g[index].pat].name;
    pthread_mutex_unlock(&S->mu);
    return name;
}
