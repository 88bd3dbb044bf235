#version 450
// unary.comp — elementwise ops: silu, gelu (exact, via erf), quick_gelu,
// geglu (value half times gelu of the gate half) and convert (bit exact).
//   x [n] (geglu: [rows, 2F]), y [n] (geglu: [rows, F])
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 x, y;
    uint n, dx, dy, op, f; // op: UN_* below; f: geglu's F
} p;

const uint UN_SILU = 0u, UN_GELU = 1u, UN_QUICK_GELU = 2u, UN_GEGLU = 3u, UN_CONVERT = 4u;

// erf by Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, which
// gelu scales by |x|/2 (within the F32 tolerance for |x| up to ~60).
float erf_as(float x) {
    float a = abs(x);
    float t = 1.0 / (1.0 + 0.3275911 * a);
    float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
                 t * (-1.453152027 + t * 1.061405429))));
    float r = 1.0 - poly * exp(-a * a);
    return x < 0.0 ? -r : r;
}
float gelu(float x) { return 0.5 * x * (1.0 + erf_as(x * 0.70710678118654752)); }
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
