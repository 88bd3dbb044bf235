#version 450
// norm.comp — the row-wise reductions, one workgroup of 256 per row:
//   group_norm: a row is one (sample, group): cpg channels x spatial, contiguous,
//               x [N, C, spatial] -> y, gamma/beta [C], optional SiLU;
//   layer_norm: a row is x's last dim C, gamma/beta [C];
//   softmax:    a row is x's last dim C, max-subtracted.
// Statistics in two passes (mean, then squared deviations) in F32: a mean
// far from zero loses nothing, unlike E[x^2] - E[x]^2.
#include "common.glsl"
#include "reduce.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 x, gamma, beta, y;
    uint rows, len, spatial, cpg, groups; // len: elements per row; group_norm: spatial,
                                          // channels per group, groups
    uint dx, dw, dy, op, silu;            // op: 0 group_norm, 1 layer_norm, 2 softmax
    float eps;
} p;

void main() {
    uint row = flat_group();
    if (row >= p.rows) return; // uniform across the workgroup
    uint t = gl_LocalInvocationID.x, base = row * p.len;
    if (p.op == 2u) {
        float m = -1.0 / 0.0;
        for (uint j = t; j < p.len; j += 256u) m = max(m, ld(p.x, p.dx, base + j));
        m = wg_max(m);
        float s = 0.0;
        for (uint j = t; j < p.len; j += 256u) s += exp(ld(p.x, p.dx, base + j) - m);
        float inv = 1.0 / wg_sum(s);
        for (uint j = t; j < p.len; j += 256u) st(p.y, p.dy, base + j, exp(ld(p.x, p.dx, base + j) - m) * inv);
        return;
    }
    float s = 0.0;
    for (uint j = t; j < p.len; j += 256u) s += ld(p.x, p.dx, base + j);
    float mean = wg_sum(s) / float(p.len);
    float q = 0.0;
    for (uint j = t; j < p.len; j += 256u) {
        float d = ld(p.x, p.dx, base + j) - mean;
        q += d * d;
    }
    float rstd = inversesqrt(wg_sum(q) / float(p.len) + p.eps);
    // The channel of element j: group_norm's group's first channel plus
    // j / spatial; layer_norm's column.
    uint c0 = (row % max(p.groups, 1u)) * p.cpg;
    for (uint j = t; j < p.len; j += 256u) {
        uint c = p.op == 0u ? c0 + j / p.spatial : j;
        float v = (ld(p.x, p.dx, base + j) - mean) * rstd * ld(p.gamma, p.dw, c) + ld(p.beta, p.dw, c);
        if (p.silu != 0u) v = v / (1.0 + exp(-v));
        st(p.y, p.dy, base + j, v);
    }
}
