#!/usr/bin/env python
"""Test rhythm of the module notebooks: the share of exported definitions followed by a test within three cells.

    python .ci/rhythm.py [--min 0.5] [NOTEBOOK ...]

A definition is a top-level `def` or `class` in an `#| export` cell; a test is a later code cell, not exported,
that calls a `fastcore.test` function or asserts. Exits 1 when a module notebook is below --min.
"""
import ast, json, re, sys
from pathlib import Path

TEST = re.compile(r'\b(test_\w+|assert)\b')

def cells(path):
    return [(c['cell_type'], ''.join(c['source'])) for c in json.loads(Path(path).read_text())['cells']]

def definitions(src):
    "Names of the top-level functions and classes in a cell (directives stripped)."
    code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
    try: tree = ast.parse(code)
    except SyntaxError: return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]

def rhythm(path, window=3):
    "(n definitions, n followed by a test within `window` cells, export cells holding more than one definition)."
    cs, n, tested, multi = cells(path), 0, 0, []
    for i, (kind, src) in enumerate(cs):
        if kind != 'code' or not re.search(r'^#\|\s*export', src, re.M): continue
        defs = definitions(src)
        if not defs: continue
        if len(defs) > 1: multi.append(defs)
        nxt = [s for k, s in cs[i+1:i+1+window] if k == 'code' and not re.search(r'^#\|\s*export', s, re.M)]
        ok = any(TEST.search(s) for s in nxt)
        n += len(defs); tested += len(defs) * ok
    return n, tested, multi

if __name__ == '__main__':
    args, lo = sys.argv[1:], 0.5
    if '--min' in args: i = args.index('--min'); lo = float(args[i+1]); del args[i:i+2]
    nbs = args or sorted(str(p) for p in Path('nbs').glob('[0-9]*.ipynb'))
    bad = []
    for p in nbs:
        n, t, multi = rhythm(p)
        if not n: continue
        share = t / n
        print(f"{Path(p).name:28} {t:3}/{n:3} definitions tested within 3 cells ({100*share:3.0f}%)"
              + (f"; {len(multi)} export cells with several definitions" if multi else ''))
        if share < lo: bad.append(p)
    if bad: print(f"below {lo:.0%}: {', '.join(bad)}"); sys.exit(1)
