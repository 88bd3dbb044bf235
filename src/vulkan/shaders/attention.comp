#version 450
// attention.comp — softmax(scale q kᵀ + causal mask) v with an online
// softmax: one invocation per (batch, head, query) keeps its running max m,
// sum l and D accumulators; the workgroup's 64 queries share key/value
// tiles in shared memory. The Nq x Nk score matrix never exists.
// One dispatch covers the keys [k0, k1). When the host splits the keys over
// several dispatches (lavapipe ends any invocation after 65535 loop
// iterations: see vk_ops_nn.c), the state (m, l, acc) is carried between
// them in F32 scratch; the last dispatch normalizes and stores y.
//   q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*D] -> y [B, Nq, H*D]; D <= MAXD
//   acc [B, H, Nq, D] (F32), ml [B, H, Nq, 2] (F32): the carried state
#include "common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 q, k, v, y, acc, ml;
    uint nq, nk, heads, d, dt, causal, tk; // tk: keys per tile, tk*d <= TILE
    uint k0, k1, first, last;
    float scale;
} p;

// The head dims this pipeline holds (specialization constant 0: the host
// builds 64, 128, 256 and this default, and picks the smallest that fits).
layout(constant_id = 0) const uint MAXD = 512;
#define TILE 2048
shared float Ks[TILE];
shared float Vs[TILE];

void main() {
    uint i = gl_WorkGroupID.x * 64u + gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z, t = gl_LocalInvocationID.x;
    uint hd = p.heads * p.d;
    bool live = i < p.nq;
    uint state = ((b * p.heads + h) * p.nq + i); // this query's row of the carried state
    float qv[MAXD], acc[MAXD];
    float m = -1.0 / 0.0, l = 0.0;
    if (live && p.first == 0u) {
        m = BufF32(p.ml).v[2u * state];
        l = BufF32(p.ml).v[2u * state + 1u];
    }
    for (uint e = 0u; e < p.d; e++) {
        qv[e] = live ? ld(p.q, p.dt, (b * p.nq + i) * hd + h * p.d + e) * p.scale : 0.0;
        acc[e] = live && p.first == 0u ? BufF32(p.acc).v[state * p.d + e] : 0.0;
    }
    // Causal: no query of this workgroup sees past its last one.
    uint kend = p.k1;
    if (p.causal != 0u) kend = min(kend, min(p.nq, gl_WorkGroupID.x * 64u + 64u));
    for (uint j0 = p.k0; j0 < kend; j0 += p.tk) {
        uint cnt = min(p.tk, kend - j0);
        barrier();
        for (uint e = t; e < cnt * p.d; e += 64u) {
            uint j = e / p.d, c = e - j * p.d;
            uint src = (b * p.nk + j0 + j) * hd + h * p.d + c;
            Ks[e] = ld(p.k, p.dt, src);
            Vs[e] = ld(p.v, p.dt, src);
        }
        barrier();
        // Every invocation runs the same loop (the dead ones on zeros), so
        // the barriers above stay in uniform control flow.
        for (uint j = 0u; j < cnt; j++) {
            if (p.causal != 0u && j0 + j > i) break;
            float s = 0.0;
            for (uint e = 0u; e < p.d; e++) s = fma(qv[e], Ks[j * p.d + e], s);
            if (s > m) { // a new max: rescale what was summed so far
                float corr = exp(m - s);
                l *= corr;
                for (uint e = 0u; e < p.d; e++) acc[e] *= corr;
                m = s;
            }
            float pr = exp(s - m);
            l += pr;
            for (uint e = 0u; e < p.d; e++) acc[e] = fma(pr, Vs[j * p.d + e], acc[e]);
        }
    }
    if (!live) return;
    if (p.last != 0u) {
        float inv = 1.0 / l;
        for (uint e = 0u; e < p.d; e++) st(p.y, p.dt, (b * p.nq + i) * hd + h * p.d + e, acc[e] * inv);
        return;
    }
    BufF32(p.ml).v[2u * state] = m;
    BufF32(p.ml).v[2u * state + 1u] = l;
    for (uint e = 0u; e < p.d; e++) BufF32(p.acc).v[state * p.d + e] = acc[e];
}
