/* cmd_info_cpu.c — sdc info --cpu [--json]: the processor's features, the
 * OpenBLAS core in use and who chose it, and sdc's own kernel path (chosen
 * at run time: cpuid, or SDC_CPU_PATH=auto|avx2|avx512). */
#include "cli.h"

#include "../cpu/cpu_features.h"
#include "../cpu/cpu_isa.h"

#include <errno.h>
#include <string.h>

static const char *origin_text(const sdc_blas_state *s) {
    switch (s->origin) {
    case SDC_BLAS_BY_USER: return "set by the user (OPENBLAS_CORETYPE)";
    case SDC_BLAS_BY_SDC: return "set by sdc";
    default: return "OpenBLAS's own choice";
    }
}

static const char *origin_key(const sdc_blas_state *s) {
    return s->origin == SDC_BLAS_BY_USER ? "user" : s->origin == SDC_BLAS_BY_SDC ? "sdc" : "openblas";
}

int cmd_info_cpu(bool json) {
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    char feats[256];
    sdc_cpu_features_string(&f, feats, sizeof feats);
    sdc_blas_state b = sdc_blas_state_get();
    const char *suits = sdc_blas_core_for(&f);
    const sdc_cpu_isa_choice *isa = sdc_cpu_isa_choice_get();
    if (json) {
        printf("{\"vendor\": ");
        cli_json_string(stdout, f.vendor);
        printf(", \"brand\": ");
        cli_json_string(stdout, f.brand);
        printf(", \"family\": %d, \"model\": %d, \"features\": ", f.family, f.model);
        cli_json_string(stdout, feats);
        printf(", \"openblas_core\": ");
        cli_json_string(stdout, b.core ? b.core : "");
        printf(", \"openblas_core_origin\": \"%s\", \"openblas_first_pick\": ", origin_key(&b));
        if (b.openblas_pick) cli_json_string(stdout, b.openblas_pick);
        else printf("null");
        printf(", \"suited_core\": ");
        if (suits) cli_json_string(stdout, suits);
        else printf("null");
        printf(", \"openblas_config\": ");
        cli_json_string(stdout, b.config ? b.config : "");
        printf(", \"sdc_kernels\": ");
        cli_json_string(stdout, sdc_cpu_kernel_path());
        printf(", \"cpu_path\": \"%s\", \"cpu_path_request\": ", sdc_cpu_isa_name(isa->isa));
        cli_json_string(stdout, isa->request);
        printf(", \"cpu_path_fell_back\": %s, \"cpu_path_note\": ", isa->fell_back ? "true" : "false");
        cli_json_string(stdout, isa->note);
        printf(", \"threads\": %d}\n", sdc_get_threads());
    } else {
        printf("cpu:         %s (%s, family %d, model %d)\n", f.brand[0] ? f.brand : "?", f.vendor,
               f.family, f.model);
        printf("features:    %s\n", feats);
        printf("openblas:    %s, %s", b.core ? b.core : "?", origin_text(&b));
        if (b.openblas_pick) printf("; OpenBLAS had picked %s", b.openblas_pick);
        printf("\n             %s\n", b.config ? b.config : "");
        printf("suited core: %s\n", suits ? suits : "(any)");
        printf("sdc kernels: %s\n", sdc_cpu_kernel_path());
        printf("cpu path:    %s (%s)%s\n", sdc_cpu_isa_name(isa->isa), isa->note,
               isa->fell_back ? " [request not met]" : "");
        printf("threads:     %d\n", sdc_get_threads());
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sdc info: cannot write the output: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
