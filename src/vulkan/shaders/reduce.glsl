// reduce.glsl — workgroup-wide sum and max over 256 invocations, through
// shared memory (no subgroup operations: portable to every Vulkan 1.2 device).
shared float red_buf[256];

float wg_sum(float v) {
    uint t = gl_LocalInvocationID.x;
    barrier();
    red_buf[t] = v;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) red_buf[t] += red_buf[t + s];
        barrier();
    }
    return red_buf[0];
}

float wg_max(float v) {
    uint t = gl_LocalInvocationID.x;
    barrier();
    red_buf[t] = v;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) red_buf[t] = max(red_buf[t], red_buf[t + s]);
        barrier();
    }
    return red_buf[0];
}
