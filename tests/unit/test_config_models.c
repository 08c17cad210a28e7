/* serving.* configuration: the models list read from YAML into typed values, its errors at
 * the right line naming the field, the dump (api_key redacted) and copies. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "agentaflow/config.h"

static const char good[] = "serving:\n"
                           "  breaker:\n"
                           "    failures: 3\n"
                           "    cooldown: 2s\n"
                           "  models:\n"
                           "    - id: llama-3-8b\n"
                           "      name: Llama 3 8B\n"
                           "      owned_by: meta\n"
                           "      pricing: {gpu_hourly: 2.5}\n"
                           "      backends:\n"
                           "        - url: http://10.0.0.5:8000\n"
                           "          api_key: sk-secret\n"
                           "          provider: vllm\n"
                           "          timeout: 60s\n"
                           "          max_load: 32\n"
                           "        - {simulated: true, token_interval: 5ms}\n"
                           "    - id: gpt-4o-mini\n"
                           "      pricing: {input_per_million: 0.15, output_per_million: 0.6}\n"
                           "      backends: [{url: \"https://api.example.com\", model: gpt-4o}]\n"
                           "components:\n"
                           "  model_serving:\n"
                           "    capture_content: true\n";

static void test_models_read(void **state)
{
    (void)state;
    af_tracing_config cfg;
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    assert_int_equal(cfg.serving.n_models, 0);
    assert_int_equal(cfg.serving.breaker_failures, 5);
    af_config_diag d;
    af_config_diag_init(&d);
    assert_int_equal(af_tracing_config_load_string("t.yaml", good, sizeof(good) - 1, &cfg, &d), 0);
    assert_int_equal(d.n_warnings, 0);
    assert_true(cfg.components.model_serving.capture_content);
    assert_int_equal(cfg.serving.breaker_failures, 3);
    assert_int_equal(cfg.serving.breaker_cooldown_ms, 2000);
    assert_int_equal(cfg.serving.n_models, 2);
    const af_config_model *m = &cfg.serving.models[0];
    assert_string_equal(m->id, "llama-3-8b");
    assert_string_equal(m->name, "Llama 3 8B");
    assert_string_equal(m->owned_by, "meta");
    assert_float_equal(m->gpu_hourly, 2.5, 0);
    assert_int_equal(m->n_backends, 2);
    assert_string_equal(m->backends[0].url, "http://10.0.0.5:8000");
    assert_string_equal(m->backends[0].api_key, "sk-secret");
    assert_string_equal(m->backends[0].provider, "vllm");
    assert_int_equal(m->backends[0].timeout_ms, 60000);
    assert_int_equal(m->backends[0].connect_timeout_ms, 2000);
    assert_int_equal(m->backends[0].max_load, 32);
    assert_null(m->backends[1].url);
    assert_int_equal(m->backends[1].token_interval_ms, 5);
    assert_float_equal(cfg.serving.models[1].output_per_million, 0.6, 0);
    assert_string_equal(cfg.serving.models[1].backends[0].model, "gpt-4o");

    char *json = NULL;
    assert_int_equal(af_config_dump_json(&cfg, true, &json), 0);
    assert_null(strstr(json, "sk-secret"));
    assert_non_null(strstr(json, "\"api_key\":\"[redacted]\""));
    assert_non_null(strstr(json, "\"id\":\"gpt-4o-mini\""));
    free(json);

    af_tracing_config copy;
    assert_int_equal(af_tracing_config_copy(&copy, &cfg), 0);
    assert_int_equal(copy.serving.n_models, 2);
    assert_ptr_not_equal(copy.serving.models, cfg.serving.models);
    assert_string_equal(copy.serving.models[0].backends[0].api_key, "sk-secret");
    af_tracing_config_clear(&copy);
    af_config_diag_free(&d);
    af_tracing_config_clear(&cfg);
}

/* Loads yaml and expects an error at line:column-free "t.yaml:<line>" naming `field`. */
static void expect_error(const char *yaml, const char *where, const char *words)
{
    af_tracing_config cfg;
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    af_config_diag d;
    af_config_diag_init(&d);
    assert_int_equal(af_tracing_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &d),
                     AF_EPARSE);
    char *text = af_config_diag_format(&d);
    if (!strstr(text, where) || !strstr(text, words))
        fail_msg("want \"%s\" and \"%s\" in:\n%s", where, words, text);
    free(text);
    assert_int_equal(cfg.serving.n_models, 0); /* nothing half-read */
    af_config_diag_free(&d);
    af_tracing_config_clear(&cfg);
}

static void test_models_errors(void **state)
{
    (void)state;
    expect_error("serving:\n  models:\n    - name: x\n      backends: [{simulated: true}]\n",
                 "t.yaml:3", "a model needs an id");
    expect_error("serving:\n  models:\n    - id: a\n      backends:\n        - url: ftp://x\n",
                 "serving.models[0].backends[0].url", "expected an http:// or https:// URL");
    expect_error("serving:\n  models:\n    - id: a\n      backends:\n"
                 "        - {url: \"http://h\", simulated: true}\n",
                 "t.yaml:5", "exactly one of url or simulated");
    expect_error("serving:\n  models:\n    - id: a\n      pricing: {gpu_hourly: -1}\n"
                 "      backends: [{simulated: true}]\n",
                 "serving.models[0].pricing.gpu_hourly", "expected a price in USD");
    expect_error("serving:\n  models:\n    - id: a\n      backends: []\n",
                 "serving.models[0].backends", "expected a list of 1 to 64 backends");
    expect_error("serving:\n  models:\n    - {id: a, backends: [{simulated: true}]}\n"
                 "    - {id: a, backends: [{simulated: true}]}\n",
                 "t.yaml:4", "model id a is used twice");
    expect_error("serving:\n  models:\n    - id: a\n      pricing: {gpu_hourly: 1, "
                 "input_per_million: 1}\n      backends: [{simulated: true}]\n",
                 "t.yaml:3", "not both");
    expect_error("serving:\n  models: {id: a}\n", "serving.models", "expected a list");
    expect_error("serving:\n  models:\n    - id: a\n      backends:\n"
                 "        - {simulated: true, timeout: soon}\n",
                 "serving.models[0].backends[0].timeout", "expected a duration");
}

static void test_models_unknown_field_warns(void **state)
{
    (void)state;
    af_tracing_config cfg;
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    af_config_diag d;
    af_config_diag_init(&d);
    const char *y = "serving:\n  models:\n    - id: a\n      colour: red\n"
                    "      backends: [{simulated: true}]\n";
    assert_int_equal(af_tracing_config_load_string("t.yaml", y, strlen(y), &cfg, &d), 0);
    assert_int_equal(d.n_warnings, 1);
    char *text = af_config_diag_format(&d);
    assert_non_null(strstr(text, "serving.models[0].colour"));
    free(text);
    assert_int_equal(cfg.serving.n_models, 1);
    af_config_diag_free(&d);
    af_tracing_config_clear(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_read),
        cmocka_unit_test(test_models_errors),
        cmocka_unit_test(test_models_unknown_field_warns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
