/*
 * NVML backend against the fake libnvidia-ml (fake_nvml.c): the dlopen path, unit
 * conversions, per-field validity for unsupported queries, processes, the library path from
 * options and from AF_NVML_LIBRARY, and the collector's automatic choice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "agentaflow/gpu.h"

static void test_backend_reads_values(void **state)
{
    (void)state;
    af_gpu_backend *b = NULL;
    char err[256] = "";
    assert_int_equal(af_gpu_backend_nvml_new(FAKE_NVML_PATH, &b, err, sizeof(err)), 0);
    assert_string_equal(af_gpu_backend_name(b), "nvml");
    assert_int_equal(af_gpu_backend_device_count(b), 2);

    af_gpu_sample m;
    af_gpu_process p[AF_GPU_MAX_PROCESSES];
    size_t np = 0;
    memset(&m, 0, sizeof(m));
    assert_int_equal(af_gpu_backend_sample(b, 0, 0, &m, p, AF_GPU_MAX_PROCESSES, &np), 0);
    assert_string_equal(m.name, "Fake H100 80GB HBM3");
    assert_string_equal(m.uuid, "GPU-00000000-0000-0000-0000-000000000000");
    assert_int_equal(m.memory_total_mb, 81920);
    assert_int_equal(m.memory_used_mb, 4096);
    assert_int_equal(m.memory_free_mb, 81920 - 4096);
    assert_true(m.utilization_gpu == 87 && m.utilization_memory == 42);
    assert_true(m.temperature == 78);
    assert_true(m.power_draw == 612.25 && m.power_limit == 700);
    assert_true(m.fan_speed == 55);
    assert_int_equal(m.clock_graphics, 1755);
    assert_int_equal(m.clock_memory, 2619);
    assert_true(m.encoder_utilization == 12 && m.decoder_utilization == 7);
    assert_int_equal(m.process_count, 1);
    assert_int_equal(np, 1);
    assert_int_equal(p[0].pid, (uint32_t)getpid());
    assert_int_equal(p[0].memory_used_mb, 2048);
    assert_int_equal(p[0].type, 'C');
    assert_non_null(strstr("test_gpu_nvml", p[0].process_name)); /* comm is <= 15 chars */
    uint32_t all = AF_GPU_F_UTIL_GPU | AF_GPU_F_UTIL_MEMORY | AF_GPU_F_MEMORY |
                   AF_GPU_F_TEMPERATURE | AF_GPU_F_POWER_DRAW | AF_GPU_F_POWER_LIMIT |
                   AF_GPU_F_FAN | AF_GPU_F_CLOCK_GRAPHICS | AF_GPU_F_CLOCK_MEMORY |
                   AF_GPU_F_ENCODER | AF_GPU_F_DECODER | AF_GPU_F_PROCESSES;
    assert_int_equal(m.valid, all);

    /* Device 1 answers NOT_SUPPORTED for fan, encoder and decoder. */
    memset(&m, 0, sizeof(m));
    assert_int_equal(af_gpu_backend_sample(b, 1, 0, &m, p, AF_GPU_MAX_PROCESSES, &np), 0);
    assert_string_equal(m.name, "Fake Tesla T4");
    assert_int_equal(m.valid,
                     all & ~(uint32_t)(AF_GPU_F_FAN | AF_GPU_F_ENCODER | AF_GPU_F_DECODER));
    assert_true(m.fan_speed == 0);
    assert_int_equal(m.process_count, 0);
    char *json;
    assert_int_equal(af_gpu_sample_json(&m, &json), 0);
    assert_non_null(strstr(json, "\"fan_speed\":null"));
    assert_non_null(strstr(json, "\"encoder_utilization\":null"));
    assert_non_null(strstr(json, "\"power_draw\":27.5"));
    free(json);
    af_gpu_backend_free(b);
}

static void test_env_path_and_errors(void **state)
{
    (void)state;
    af_gpu_backend *b = NULL;
    char err[256] = "";
    setenv("AF_NVML_LIBRARY", FAKE_NVML_PATH, 1);
    assert_int_equal(af_gpu_backend_nvml_new(NULL, &b, err, sizeof(err)), 0);
    af_gpu_backend_free(b);

    setenv("FAKE_NVML_DEVICES", "0", 1);
    assert_int_equal(af_gpu_backend_nvml_new(NULL, &b, err, sizeof(err)), -ENODEV);
    assert_null(b);
    assert_string_equal(err, "NVML found no GPU");
    /* AUTO falls back and says why. */
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    af_gpu_collector *c = NULL;
    assert_int_equal(af_gpu_collector_new(&o, &c, NULL, 0), 0);
    assert_string_equal(af_gpu_collector_backend_name(c), "simulated");
    assert_string_equal(af_gpu_collector_backend_reason(c), "NVML unavailable: NVML found no GPU");
    af_gpu_collector_free(c);
    unsetenv("FAKE_NVML_DEVICES");
    unsetenv("AF_NVML_LIBRARY");

    /* A library without the NVML entry points (libc) is refused. */
    assert_int_equal(af_gpu_backend_nvml_new("libc.so.6", &b, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "lacks the NVML v2 entry points"));
}

static void test_collector_auto_picks_nvml(void **state)
{
    (void)state;
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    o.nvml_library = FAKE_NVML_PATH;
    af_gpu_collector *c = NULL;
    assert_int_equal(af_gpu_collector_new(&o, &c, NULL, 0), 0);
    assert_string_equal(af_gpu_collector_backend_name(c), "nvml");
    assert_string_equal(af_gpu_collector_backend_reason(c), "NVML found 2 devices");
    assert_int_equal(af_gpu_collector_collect_now(c), 0);
    af_gpu_sample m;
    assert_int_equal(af_gpu_collector_latest_for(c, "gpu-1", &m), 0);
    assert_string_equal(m.gpu_id, "gpu-1");
    assert_true(m.temperature == 41);
    af_gpu_health h;
    assert_int_equal(af_gpu_collector_health(c, "gpu-0", &h), 0);
    assert_int_equal(h.temperature_status, AF_GPU_WARNING); /* 78 >= 75 */
    assert_int_equal(h.power_status, AF_GPU_WARNING);       /* 612.25 W of 700 W: 87.5 % */
    af_gpu_collector_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_reads_values),
        cmocka_unit_test(test_env_path_and_errors),
        cmocka_unit_test(test_collector_auto_picks_nvml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
