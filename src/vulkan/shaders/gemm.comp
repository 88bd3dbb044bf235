#version 450
// gemm.comp — the tiled F32-accumulating GEMM behind linear and conv2d:
// C[m, n] = sum_k A(m, k) B(k, n) (+ bias), 64x64 tiles, 16-deep k steps
// through shared memory, each of the 16x16 invocations owning 4x4 outputs.
// Built twice: plain, it is linear; with -DCONV, conv2d as implicit GEMM.
//   linear: x [M, K], w [N, K], b [N] or null -> y [M, N]; A = x, B(k, n) = w[n, k]
//   conv:   w [OC, C*KH*KW], x [batch, C, H, W], b [OC] or null -> y [batch, OC, OH*OW];
//           A = w, B(k, n) = x at the (c, u, v) of k and the pixel n (0 in the padding)
#include "common.glsl"
layout(local_size_x = 16, local_size_y = 16) in;
layout(push_constant) uniform P {
    uvec2 x, w, b, y;
    uint M, N, K, dx, dw, db, dy;
    uint C, H, W, KW, KHW, OW, stride, pad_top, pad_left; // conv only
} p;

shared float As[16][65]; // [k][m], padded: no bank conflicts on the column writes
shared float Bs[16][65]; // [k][n]

float load_a(uint m, uint k) {
    if (m >= p.M || k >= p.K) return 0.0;
#ifdef CONV
    return ld(p.w, p.dw, m * p.K + k);
#else
    return ld(p.x, p.dx, m * p.K + k);
#endif
}

float load_b(uint k, uint n, uint z) {
    if (k >= p.K || n >= p.N) return 0.0;
#ifdef CONV
    uint c = k / p.KHW, r = k - c * p.KHW;
    uint u = r / p.KW, v = r - u * p.KW;
    uint oh = n / p.OW, ow = n - oh * p.OW;
    int ih = int(oh * p.stride + u) - int(p.pad_top);
    int iw = int(ow * p.stride + v) - int(p.pad_left);
    if (ih < 0 || iw < 0 || ih >= int(p.H) || iw >= int(p.W)) return 0.0;
    return ld(p.x, p.dx, ((z * p.C + c) * p.H + uint(ih)) * p.W + uint(iw));
#else
    return ld(p.w, p.dw, n * p.K + k);
#endif
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = ty * 16u + tx;
    uint m0 = gl_WorkGroupID.y * 64u, n0 = gl_WorkGroupID.x * 64u, z = gl_WorkGroupID.z;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += 16u) {
        for (uint l = 0u; l < 4u; l++) {
            uint idx = tid + 256u * l;
            uint am = idx / 16u, ak = idx % 16u; // consecutive invocations: consecutive k
            As[ak][am] = load_a(m0 + am, k0 + ak);
#ifdef CONV
            uint bn = idx % 64u, bk = idx / 64u; // consecutive pixels
#else
            uint bn = idx / 16u, bk = idx % 16u; // consecutive k of a weight row
#endif
            Bs[bk][bn] = load_b(k0 + bk, n0 + bn, z);
        }
        barrier();
        for (uint kk = 0u; kk < 16u; kk++) {
            float a[4], bv[4];
            for (uint i = 0u; i < 4u; i++) a[i] = As[kk][ty + 16u * i];
            for (uint j = 0u; j < 4u; j++) bv[j] = Bs[kk][tx + 16u * j];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(a[i], bv[j], acc[i][j]);
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + ty + 16u * i;
        if (m >= p.M) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint n = n0 + tx + 16u * j;
            if (n >= p.N) continue;
            float v = acc[i][j];
#ifdef CONV
            if (!is_null(p.b)) v += ld(p.b, p.db, m);
            st(p.y, p.dy, (z * p.M + m) * p.N + n, v);
#else
            if (!is_null(p.b)) v += ld(p.b, p.db, n);
            st(p.y, p.dy, m * p.N + n, v);
#endif
        }
    }
}
