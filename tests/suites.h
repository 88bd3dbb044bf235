/* suites.h — every Check suite of the test runner, and helpers they share. */
#ifndef SDC_TEST_SUITES_H
#define SDC_TEST_SUITES_H

#include <check.h>

Suite *suite_core(void);
Suite *suite_ops(void);
Suite *suite_safetensors(void);
Suite *suite_cli(void);
Suite *suite_models(void);
Suite *suite_model_refusals(void);
Suite *suite_eval_cli(void);
Suite *suite_fullsize(void);
Suite *suite_tokenizer(void);
Suite *suite_image(void);
Suite *suite_rng(void);
Suite *suite_samplers(void);
Suite *suite_prompt(void);
Suite *suite_embeddings(void);
Suite *suite_pipeline(void);
Suite *suite_generate_cli(void);
Suite *suite_augment(void);
Suite *suite_fuzz_regressions(void);
Suite *suite_cuda(void);
Suite *suite_vulkan(void);
Suite *suite_clip(void);
Suite *suite_retrieve(void);
Suite *suite_bad_inputs(void);
Suite *suite_faults(void);
Suite *suite_cpu(void);
Suite *suite_eval(void);
Suite *suite_report(void);
Suite *suite_filter(void);
Suite *suite_train(void);
Suite *suite_grad(void);

/* Path of the sdc binary under test ($SDC_BIN, default build/sdc). */
const char *test_sdc_bin(void);
/* A fresh empty directory under $TMPDIR for this test (removed at exit). */
const char *test_tmpdir(void);
/* The tiny diffusers model with a scheduler config that is not SD 1.5's
 * (test_pipeline.c), made once per process in a temp folder. */
const char *test_other_scheduler_model(void);

#endif
