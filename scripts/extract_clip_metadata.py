#!/usr/bin/env python3
"""extract_clip_metadata.py — writes CLIP's ImageNet prompt templates and class
names, as shipped in the open-clip-torch wheel (open_clip/zero_shot_metadata.py),
into plain text files: one template per line with {} for the class name.

    python3 scripts/extract_clip_metadata.py WHEEL OUTDIR

Reads the module with ast (never imports or runs it)."""
import ast
import sys
import zipfile


def template_text(node):
    """lambda c: f'a photo of a {c}.'  ->  'a photo of a {}.'"""
    if not isinstance(node, ast.Lambda) or not isinstance(node.body, ast.JoinedStr):
        raise ValueError("unexpected template form")
    out = []
    for part in node.body.values:
        if isinstance(part, ast.Constant):
            out.append(part.value.replace("{", "{{").replace("}", "}}"))
        elif isinstance(part, ast.FormattedValue):
            out.append("{}")
    return "".join(out)


def main(wheel, outdir):
    src = zipfile.ZipFile(wheel).read("open_clip/zero_shot_metadata.py").decode("utf-8")
    found = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            found[getattr(node.targets[0], "id", "")] = node.value
    files = {
        "clip_templates.txt": [template_text(e) for e in found["OPENAI_IMAGENET_TEMPLATES"].elts],
        "clip7_templates.txt": [template_text(e) for e in found["SIMPLE_IMAGENET_TEMPLATES"].elts],
        "imagenet_classes.txt": [ast.literal_eval(e) for e in found["IMAGENET_CLASSNAMES"].elts],
    }
    expect = {"clip_templates.txt": 80, "clip7_templates.txt": 7, "imagenet_classes.txt": 1000}
    for name, lines in files.items():
        if len(lines) != expect[name] or any("\n" in l for l in lines):
            sys.exit(f"extract_clip_metadata: {name}: expected {expect[name]} lines, got {len(lines)}")
        with open(f"{outdir}/{name}", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
