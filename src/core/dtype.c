/* dtype.c — dtype names and sizes, and F32 <-> F16/BF16 conversion
 * (IEEE round-to-nearest-even; NaN stays NaN, Inf stays Inf). */
#include "sdc.h"

#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static const struct { const char *name; size_t size; } dtype_info[SDC_DTYPE_COUNT] = {
    [SDC_F32] = {"F32", 4}, [SDC_F16] = {"F16", 2}, [SDC_BF16] = {"BF16", 2},
    [SDC_F64] = {"F64", 8}, [SDC_I64] = {"I64", 8}, [SDC_I32] = {"I32", 4},
    [SDC_I16] = {"I16", 2}, [SDC_I8] = {"I8", 1},   [SDC_U8] = {"U8", 1},
    [SDC_BOOL] = {"BOOL", 1},
};

size_t sdc_dtype_size(sdc_dtype t) {
    return (unsigned)t < SDC_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *sdc_dtype_name(sdc_dtype t) {
    return (unsigned)t < SDC_DTYPE_COUNT ? dtype_info[t].name : "?";
}

bool sdc_dtype_from_name(const char *name, sdc_dtype *out) {
    for (int i = 0; i < SDC_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (sdc_dtype)i;
            return true;
        }
    }
    return false;
}

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float sdc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* Inf/NaN */
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t sdc_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* Inf or NaN (keep NaN quiet and non-zero) */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 | ((abs >> 13) & 0x3ff) : 0);
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: Inf */
    if (abs < 0x38800000u) {                      /* below 2^-14: subnormal or zero */
        if (abs < 0x33000000u) return sign;       /* below half the smallest subnormal */
        uint32_t e = abs >> 23, m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                 /* in 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t r = abs + 0xfff + ((abs >> 13) & 1); /* round to nearest even at bit 13 */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float sdc_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t sdc_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static bool is_float_type(sdc_dtype t) { return t == SDC_F32 || t == SDC_F16 || t == SDC_BF16; }

/* Reads element i of a possibly unaligned buffer as float. */
static inline float load_as_f32(const unsigned char *p, sdc_dtype t, size_t i) {
    if (t == SDC_F32) { float f; memcpy(&f, p + 4 * i, 4); return f; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t == SDC_F16 ? sdc_f16_to_f32(h) : sdc_bf16_to_f32(h);
}

static inline void store_from_f32(unsigned char *p, sdc_dtype t, size_t i, float f) {
    if (t == SDC_F32) { memcpy(p + 4 * i, &f, 4); return; }
    uint16_t h = t == SDC_F16 ? sdc_f32_to_f16(f) : sdc_f32_to_bf16(f);
    memcpy(p + 2 * i, &h, 2);
}

sdc_status sdc_convert(void *dst, sdc_dtype dst_t, const void *src, sdc_dtype src_t, size_t n,
                       sdc_err *err) {
    if (!is_float_type(dst_t) || !is_float_type(src_t))
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "convert: %s -> %s is not supported",
                           sdc_dtype_name(src_t), sdc_dtype_name(dst_t));
    const unsigned char *s = src;
    unsigned char *d = dst;
    if (src_t == dst_t) {
        memmove(d, s, n * sdc_dtype_size(src_t));
        return SDC_OK;
    }
    size_t i = 0;
#if defined(__F16C__)
    /* Hardware F16C rounds to nearest even like the scalar path. */
    if (src_t == SDC_F16 && dst_t == SDC_F32) {
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
            _mm256_storeu_ps((float *)(d + 4 * i), _mm256_cvtph_ps(h));
        }
    } else if (src_t == SDC_F32 && dst_t == SDC_F16) {
        for (; i + 8 <= n; i += 8) {
            __m256 f = _mm256_loadu_ps((const float *)(s + 4 * i));
            _mm_storeu_si128((__m128i *)(d + 2 * i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
        }
    }
#endif
    for (; i < n; i++) store_from_f32(d, dst_t, i, load_as_f32(s, src_t, i));
    return SDC_OK;
}
