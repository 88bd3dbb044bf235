#version 450
// unary.comp — elementwise ops: silu, gelu (exact, via erfc), quick_gelu,
// geglu (value half times gelu of the gate half) and convert (bit exact).
//   x [n] (geglu: [rows, 2F]), y [n] (geglu: [rows, F])
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 x, y;
    uint n, dx, dy, op, f; // op: UN_* below; f: geglu's F
} p;

const uint UN_SILU = 0u, UN_GELU = 1u, UN_QUICK_GELU = 2u, UN_GEGLU = 3u, UN_CONVERT = 4u;

// erfc with a relative error below 1.2e-7 everywhere (the Chebyshev-fitted
// form t·exp(-z² + P(t)), t = 1/(1 + z/2), of Numerical Recipes' erfcc).
// GELU is x·Φ(x) = x/2·erfc(-x/√2): through erfc, not 1 + erf, its negative
// tail keeps its relative accuracy instead of cancelling.
float erfc_nr(float x) {
    float z = abs(x), t = 1.0 / (1.0 + 0.5 * z);
    float r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0.0 ? r : 2.0 - r;
}
float gelu(float x) { return 0.5 * x * erfc_nr(x * -0.70710678118654752); }
// x / (1 + e^-kx): e^-kx overflowing to +Inf gives the right limit, -0.
float x_sigmoid(float x, float k) { return x / (1.0 + exp(-k * x)); }

void main() {
    uint i = flat_id(256u);
    if (i >= p.n) return;
    if (p.op == UN_CONVERT) { st_bits(p.y, p.dy, i, ld_bits(p.x, p.dx, i)); return; }
    if (p.op == UN_GEGLU) {
        uint r = i / p.f, c = i - r * p.f;
        float v = ld(p.x, p.dx, r * 2u * p.f + c), g = ld(p.x, p.dx, r * 2u * p.f + p.f + c);
        st(p.y, p.dy, i, v * gelu(g));
        return;
    }
    float x = ld(p.x, p.dx, i);
    float y = p.op == UN_SILU ? x_sigmoid(x, 1.0) : p.op == UN_GELU ? gelu(x) : x_sigmoid(x, 1.702);
    st(p.y, p.dy, i, y);
}
