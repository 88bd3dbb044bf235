#!/usr/bin/env python3
"""gen_unicode_tables.py — writes the Unicode tables of sdc's CLIP tokenizer
(src/text/unicode.c) as a C header, derived from this Python's unicodedata and
str methods. Nothing generated is committed; the Makefile runs this at build
time:

    /usr/bin/python3 scripts/gen_unicode_tables.py build/gen/unicode_tables.h

The tables must come from the same Unicode version as the Python that runs
transformers' CLIPTokenizer (Debian 12's Python 3.11: Unicode 14.0.0).

What is derived, per code point:
  flags        L (category L*), N (N*), C (C*, which includes unassigned Cn,
               private use Co and surrogates Cs), ZS (Zs), SPACE (str.isspace),
               CASED and CASE_IGN for the final-sigma rule of str.lower(), and
               NOMATCH (see below).
  lower        str.lower() of the code point alone (U+03A3 gives U+03C3; the
               final-sigma context is applied in C).
  NFC          full canonical decomposition (unicodedata NFD of the code point,
               Hangul syllables excluded: they are algorithmic in C), canonical
               combining class, and composition pairs (the two-code-point
               canonical decomposition of each primary composite, i.e. of each
               c with NFC(NFD(c)) == c).

CASED / CASE_IGN are not exposed by Python, so they are probed from what
str.lower() does around U+03A3 (CPython's final-sigma rule: sigma is final when
preceded by cased, case-ignorable* and not followed by case-ignorable*, cased):
  ("A" + x + "Σ").lower() ends in ς  <=>  CI(x) or Cased(x)
  ("AΣ" + x).lower()[1] == ς          <=>  CI(x) or not Cased(x)
  (x + "Σ").lower() ends in ς         <=>  not CI(x) and Cased(x)
This yields CI(x) exactly, and Cased(x) exactly for every x that is not
case-ignorable, which is all the rule ever asks. For case-ignorable x the
CASED bit is taken from islower/isupper/istitle (unused by the rule).

NOMATCH marks code points that are neither L, N nor whitespace but have a
one-code-point case variant that is: under re.IGNORECASE the `regex` module's
negated class [^\\s\\p{L}\\p{N}] rejects them while [\\p{L}] and [\\p{N}] do not
accept them, so the CLIP pattern matches no token there and findall skips them
(in Unicode 14 this is only U+0345 COMBINING GREEK YPOGEGRAMMENI).
"""
import sys
import unicodedata

MAX = 0x110000
F_L, F_N, F_C, F_ZS, F_SPACE, F_CASED, F_CASE_IGN, F_NOMATCH = (1 << i for i in range(8))
SIGMA, FINAL = "\u03a3", "\u03c2"


def flags_of(cp):
    c = chr(cp)
    cat = unicodedata.category(c)
    f = 0
    if cat[0] == "L":
        f |= F_L
    if cat[0] == "N":
        f |= F_N
    if cat[0] == "C":
        f |= F_C
    if cat == "Zs":
        f |= F_ZS
    if c.isspace():
        f |= F_SPACE
    if 0xD800 <= cp <= 0xDFFF:
        return f  # never reaches the tables' users (UTF-8 decoding rejects them)
    r = ("A" + c + SIGMA).lower()[-1] == FINAL
    s = ("A" + SIGMA + c).lower()[1] == FINAL
    t = (c + SIGMA).lower()[-1] == FINAL
    ci = r and s
    if ci:
        f |= F_CASE_IGN
        if c.islower() or c.isupper() or c.istitle():
            f |= F_CASED
    elif t:
        f |= F_CASED
    if not (f & (F_L | F_N | F_SPACE)):
        for v in (c.upper(), c.lower(), c.casefold(), c.title()):
            if len(v) == 1 and v != c:
                vc = unicodedata.category(v)[0]
                if vc in "LN" or v.isspace():
                    f |= F_NOMATCH
                    break
    return f


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_unicode_tables.py OUT.h")
    out_path = sys.argv[1]
    ver = unicodedata.unidata_version
    if ver != "14.0.0":
        print(f"gen_unicode_tables.py: warning: Unicode {ver}, transformers' Python 3.11 uses 14.0.0",
              file=sys.stderr)

    flags = [flags_of(cp) for cp in range(MAX)]
    # Direct table below 0x800, then runs of equal flags.
    lo = flags[:0x800]
    runs = []
    for cp in range(0x800, MAX):
        if not runs or runs[-1][1] != flags[cp]:
            runs.append((cp, flags[cp]))

    lower1, lower_multi = [], []
    for cp in range(MAX):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        if len(low) == 1:
            lower1.append((cp, ord(low)))
        else:
            assert len(low) <= 3
            lower_multi.append((cp, [ord(x) for x in low]))

    decomp, pool = [], []
    ccc_runs = []
    comp = []
    for cp in range(MAX):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cc = unicodedata.combining(c)
        if cc:
            if ccc_runs and ccc_runs[-1][1] == cp - 1 and ccc_runs[-1][2] == cc:
                ccc_runs[-1][1] = cp
            else:
                ccc_runs.append([cp, cp, cc])
        if is_hangul_syllable(cp) or not unicodedata.decomposition(c):
            continue
        d = unicodedata.normalize("NFD", c)
        if d != c:
            decomp.append((cp, len(pool), len(d)))
            pool.extend(ord(x) for x in d)
        raw = unicodedata.decomposition(c)
        if raw.startswith("<"):
            continue
        parts = [int(x, 16) for x in raw.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", d) == c:
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    assert len(pool) < 65536

    w = []
    w.append("/* unicode_tables.h — generated by scripts/gen_unicode_tables.py from Python's")
    w.append(f" * unicodedata (Unicode {ver}). Do not edit; do not commit. */")
    w.append(f'#define UNI_DATA_VERSION "{ver}"')
    names = ["L", "N", "C", "ZS", "SPACE", "CASED", "CASE_IGN", "NOMATCH"]
    for i, n in enumerate(names):
        w.append(f"#define UNI_{n} {1 << i}u")
    w.append("static const uint8_t uni_flags_lo[0x800] = {")
    for i in range(0, 0x800, 32):
        w.append("    " + ",".join(str(x) for x in lo[i:i + 32]) + ",")
    w.append("};")
    w.append(f"/* Runs from 0x800: flags of [start, next start). */")
    w.append(f"static const uint32_t uni_run_start[{len(runs)}] = {{")
    for i in range(0, len(runs), 12):
        w.append("    " + ",".join(f"0x{s:X}" for s, _ in runs[i:i + 12]) + ",")
    w.append("};")
    w.append(f"static const uint8_t uni_run_flags[{len(runs)}] = {{")
    for i in range(0, len(runs), 32):
        w.append("    " + ",".join(str(f) for _, f in runs[i:i + 32]) + ",")
    w.append("};")
    w.append(f"/* str.lower() of one code point, one-to-one: {{cp, lower}}, sorted. */")
    w.append(f"static const uint32_t uni_lower1[{len(lower1)}][2] = {{")
    for i in range(0, len(lower1), 6):
        w.append("    " + ",".join(f"{{0x{a:X},0x{b:X}}}" for a, b in lower1[i:i + 6]) + ",")
    w.append("};")
    w.append(f"/* One-to-many lowercase: {{cp, n, c0, c1, c2}}, sorted. */")
    w.append(f"static const uint32_t uni_lower_multi[{len(lower_multi)}][5] = {{")
    for cp, seq in lower_multi:
        seq3 = seq + [0] * (3 - len(seq))
        w.append(f"    {{0x{cp:X},{len(seq)},0x{seq3[0]:X},0x{seq3[1]:X},0x{seq3[2]:X}}},")
    w.append("};")
    w.append(f"/* Canonical combining class runs: {{first, last, ccc}}, sorted. */")
    w.append(f"static const uint32_t uni_ccc[{len(ccc_runs)}][3] = {{")
    for i in range(0, len(ccc_runs), 6):
        w.append("    " + ",".join(f"{{0x{a:X},0x{b:X},{c}}}" for a, b, c in ccc_runs[i:i + 6]) + ",")
    w.append("};")
    w.append(f"/* Full canonical decompositions: {{cp, offset into uni_decomp_pool, length}}. */")
    w.append(f"static const uint32_t uni_decomp[{len(decomp)}][3] = {{")
    for i in range(0, len(decomp), 6):
        w.append("    " + ",".join(f"{{0x{a:X},{b},{c}}}" for a, b, c in decomp[i:i + 6]) + ",")
    w.append("};")
    w.append(f"static const uint32_t uni_decomp_pool[{len(pool)}] = {{")
    for i in range(0, len(pool), 12):
        w.append("    " + ",".join(f"0x{x:X}" for x in pool[i:i + 12]) + ",")
    w.append("};")
    w.append(f"/* Primary composites: {{first, second, composite}}, sorted by (first, second). */")
    w.append(f"static const uint32_t uni_comp[{len(comp)}][3] = {{")
    for i in range(0, len(comp), 6):
        w.append("    " + ",".join(f"{{0x{a:X},0x{b:X},0x{c:X}}}" for a, b, c in comp[i:i + 6]) + ",")
    w.append("};")
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(w) + "\n")
    import os
    os.replace(tmp, out_path)
    print(f"gen_unicode_tables.py: Unicode {ver}: {len(runs)} flag runs, {len(lower1)}+{len(lower_multi)} "
          f"lowercase, {len(decomp)} decompositions, {len(comp)} compositions -> {out_path}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
