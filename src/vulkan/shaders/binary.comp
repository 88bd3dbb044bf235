#version 450
// binary.comp — add and mul with broadcasting: y = a (+|*) b, where b is
// read through strides that are 0 along a broadcast dim.
//   a [d0, d1, d2, d3], b through strides s0..s3, y like a (may alias a)
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 a, b, y;
    uint n, da, db, dy, mul;
    uint d1, d2, d3;     // a's dims after the first (d0 follows from n)
    uint s0, s1, s2, s3; // b's element strides per a-dim
} p;

void main() {
    uint i = flat_id(256u);
    if (i >= p.n) return;
    uint r = i;
    uint i3 = r % p.d3; r /= p.d3;
    uint i2 = r % p.d2; r /= p.d2;
    uint i1 = r % p.d1; r /= p.d1;
    uint bi = r * p.s0 + i1 * p.s1 + i2 * p.s2 + i3 * p.s3;
    float a = ld(p.a, p.da, i), b = ld(p.b, p.db, bi);
    st(p.y, p.dy, i, p.mul != 0u ? a * b : a + b);
}
