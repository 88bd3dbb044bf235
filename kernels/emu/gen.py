#!/usr/bin/env python3
# gen.py KERNELS_DIR OUT_DIR — each KERNELS_DIR/*.cu as C++ for the emulator:
# kernel<<<cfg>>>(args) becomes emu::launch(kernel, emu::cfg(cfg), args) and
# the dynamic shared-memory array a pointer to the emulator's buffer.
import re, sys, pathlib
src = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
pat = re.compile(r'(\b[A-Za-z_]\w*(?:<[^<>;]*>)?)<<<(.*?)>>>\(', re.S)
for f in sorted(src.glob('*.cu')):
    s = f.read_text()
    s = s.replace('extern __shared__ __align__(128) unsigned char aw_smem[];', 'unsigned char *aw_smem = emu::dyn_smem();')
    s = s.replace('cudaFuncSetAttribute(attn_wmma_kernel<T>,', 'cudaFuncSetAttribute((const void *)&attn_wmma_kernel<T>,')
    n0 = s.count('<<<')
    s, n = pat.subn(lambda m: 'emu::launch(%s, emu::cfg(%s), ' % (m.group(1), m.group(2)), s)
    assert n == n0, (f, n, n0)
    (out / (f.stem + '.cpp')).write_text('#include "emu.h"\n#line 1 "%s"\n' % f + s)
