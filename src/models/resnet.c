/* resnet.c — the shared ResnetBlock2D's parameter rows (see resnet.h). */
#include "resnet.h"

void sdc_resnet_params(sdc_params *P, sdc_resnet *r, int in, int out, int temb,
                       const sdc_resnet_names *names, const char *d, const char *o) {
    sdc_param_names n;
#define N(dsuf, osuf) SDC_PARAM_NAMES(&n, d, dsuf, o, osuf)
    r->in = in;
    r->out = out;
    sdc_params_norm(P, &r->norm1_w, &r->norm1_b, in, N("norm1", names->norm1));
    sdc_params_conv(P, &r->conv1_w, &r->conv1_b, out, in, 3, N("conv1", names->conv1));
    if (names->temb)
        sdc_params_linear(P, &r->temb_w, &r->temb_b, out, temb, N("time_emb_proj", names->temb));
    sdc_params_norm(P, &r->norm2_w, &r->norm2_b, out, N("norm2", names->norm2));
    sdc_params_conv(P, &r->conv2_w, &r->conv2_b, out, out, 3, N("conv2", names->conv2));
    if (in != out)
        sdc_params_conv(P, &r->skip_w, &r->skip_b, out, in, 1, N("conv_shortcut", names->skip));
#undef N
}
