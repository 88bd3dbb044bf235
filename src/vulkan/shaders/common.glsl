// common.glsl — what every sdc compute shader shares: tensors are raw device
// addresses (buffer device address, pushed as uvec2), elements are F32, F16
// or BF16 chosen at run time by a dtype code, and all math is F32. The
// conversions are integer bit arithmetic, so they are exact and the same on
// every driver (no float16 arithmetic, no reliance on denormal handling).
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require
#extension GL_EXT_shader_16bit_storage : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer BufU32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer BufF32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer BufU16 { uint16_t v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer BufI32 { int v[]; };

// dtype codes: the host's vk_dt() maps sdc_dtype onto these.
const uint DT_F32 = 0u, DT_F16 = 1u, DT_BF16 = 2u;

// F16 bits -> F32 bits (exact, subnormals included).
uint f16_to_f32_bits(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return sign | 0x7f800000u | (m << 13);
    if (e == 0u) {
        if (m == 0u) return sign;
        int p = findMSB(m); // 0..9: value = m * 2^-24
        return sign | (uint(p + 103) << 23) | ((m << uint(23 - p)) & 0x7fffffu);
    }
    return sign | ((e + 112u) << 23) | (m << 13);
}

// F32 bits -> F16 bits, round to nearest even; NaN stays a quiet NaN.
uint f32_to_f16_bits(uint u) {
    uint sign = (u >> 16) & 0x8000u;
    uint a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u);
    if (a >= 0x477ff000u) return sign | 0x7c00u; // rounds to >= 65520
    if (a < 0x38800000u) {                       // F16 subnormal or zero
        if (a < 0x33000000u) return sign;
        uint e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e;
        uint q = m >> shift, rem = m & ((1u << shift) - 1u), half_ = 1u << (shift - 1u);
        if (rem > half_ || (rem == half_ && (q & 1u) != 0u)) q++;
        return sign | q;
    }
    uint r = a + 0xfffu + ((a >> 13) & 1u);
    return sign | ((r - 0x38000000u) >> 13);
}

uint f32_to_bf16_bits(uint u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Element i of the tensor at a (dtype dt) as F32 bits, and the reverse.
uint ld_bits(uvec2 a, uint dt, uint i) {
    if (dt == DT_F32) return BufU32(a).v[i];
    uint h = uint(BufU16(a).v[i]);
    return dt == DT_F16 ? f16_to_f32_bits(h) : h << 16;
}
void st_bits(uvec2 a, uint dt, uint i, uint u) {
    if (dt == DT_F32) { BufU32(a).v[i] = u; return; }
    BufU16(a).v[i] = uint16_t(dt == DT_F16 ? f32_to_f16_bits(u) : f32_to_bf16_bits(u));
}
float ld(uvec2 a, uint dt, uint i) { return uintBitsToFloat(ld_bits(a, dt, i)); }
void st(uvec2 a, uint dt, uint i, float x) { st_bits(a, dt, i, floatBitsToUint(x)); }

// An element copied as is (data movement: exact for every dtype).
void copy_elem(uvec2 dst, uvec2 src, uint dt, uint di, uint si) {
    if (dt == DT_F32) BufU32(dst).v[di] = BufU32(src).v[si];
    else BufU16(dst).v[di] = BufU16(src).v[si];
}

bool is_null(uvec2 a) { return a.x == 0u && a.y == 0u; }

// The flat index of this invocation in a 1-D grid that may wrap into y
// (more than 65535 groups): see vk_dispatch_1d().
uint flat_id(uint local_size) {
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * local_size +
           gl_LocalInvocationID.x;
}
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
