#version 450
// layout.comp — data movement, bit exact: upsample2x (nearest), concat along
// dim 1, transpose of the last two dims, slice along dim 1. One invocation
// per dst element.
//   upsample: x [outer, H, W] -> y [outer, OH, OW]   (outer = N*C)
//   concat:   a [outer, ca*inner], b [outer, cb*inner] -> y [outer, (ca+cb)*inner]
//   transpose: x [B, M, N] -> y [B, N, M]
//   slice:    x [outer, C*inner] -> y [outer, len*inner], from start*inner on
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 a, b, y;
    uint n, dt, op;
    uint p0, p1, p2, p3; // upsample: H, W, OH, OW; concat: ca*inner, cb*inner; transpose: M, N;
                         // slice: C*inner, len*inner, start*inner
} p;

const uint LY_UPSAMPLE = 0u, LY_CONCAT = 1u, LY_TRANSPOSE = 2u, LY_SLICE = 3u;

void main() {
    uint i = flat_id(256u);
    if (i >= p.n) return;
    if (p.op == LY_UPSAMPLE) {
        uint ow = i % p.p3, r = i / p.p3;
        uint oh = r % p.p2, o = r / p.p2;
        copy_elem(p.y, p.a, p.dt, i, (o * p.p0 + oh / 2u) * p.p1 + ow / 2u);
    } else if (p.op == LY_CONCAT) {
        uint row = p.p0 + p.p1, o = i / row, j = i - o * row;
        if (j < p.p0) copy_elem(p.y, p.a, p.dt, i, o * p.p0 + j);
        else copy_elem(p.y, p.b, p.dt, i, o * p.p1 + (j - p.p0));
    } else if (p.op == LY_SLICE) {
        uint o = i / p.p1, j = i - o * p.p1;
        copy_elem(p.y, p.a, p.dt, i, o * p.p0 + p.p2 + j);
    } else {
        // y[b, n, m] = x[b, m, n]
        uint m = i % p.p0, r = i / p.p0;
        uint nn = r % p.p1, b = r / p.p1;
        copy_elem(p.y, p.a, p.dt, i, (b * p.p0 + m) * p.p1 + nn);
    }
}
