#version 450
// embed.comp — table lookup (ids checked on the host first) and the
// sinusoidal timestep embedding.
//   embedding: ids [rows] (I32), table [V, D] -> y [rows, D]
//   timestep:  t [N] (F32), freq [half] (F32, from the host's expf) -> y [N, dim]
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 ids, table, y;
    uint n, dtab, dy, op, d, half_, flip; // op 0 embedding, 1 timestep; d: D or dim
} p;

// sin and cos of an F32 phase up to ~1e4: Cody-Waite reduction by pi/2 with
// a three-part constant (each product exact), then Taylor series on
// [-pi/4, pi/4] (error < 2e-9). A driver's sin() is only specified on
// [-pi, pi], to 2^-11.
vec2 sincos_f32(float x) {
    precise float k = floor(x * 0.63661977236758134 + 0.5);
    precise float r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
    float r2 = r * r;
    float s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
    float c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
    int q = int(k) & 3;
    if (q == 0) return vec2(s, c);
    if (q == 1) return vec2(c, -s);
    if (q == 2) return vec2(-s, -c);
    return vec2(-c, s);
}

void main() {
    uint i = flat_id(256u);
    if (i >= p.n) return;
    uint row = i / p.d, col = i - row * p.d;
    if (p.op == 0u) {
        uint id = uint(BufI32(p.ids).v[row]);
        st_bits(p.y, p.dy, i, ld_bits(p.table, p.dtab, id * p.d + col));
        return;
    }
    float v = 0.0;
    if (col < 2u * p.half_) {
        bool first = col < p.half_;
        uint j = first ? col : col - p.half_;
        vec2 sc = sincos_f32(BufF32(p.ids).v[row] * BufF32(p.table).v[j]);
        bool want_cos = (p.flip != 0u) == first;
        v = want_cos ? sc.y : sc.x;
    }
    st(p.y, p.dy, i, v);
}
