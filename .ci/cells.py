#!/usr/bin/env python
"""How much of the notebooks `nbdev_test` runs: notebooks, code cells run, and cells skipped by a test flag.

    python .ci/cells.py [--flags slow]

Without --flags, cells marked with a flag of settings.ini's `tst_flags` (`#| slow`) are counted as skipped, as
`nbdev_test` skips them; with --flags slow they are counted as run. `#| eval: false` cells never run.
"""
import json, re, sys
from pathlib import Path

def directives(src):
    return [l[2:].strip() for l in src.splitlines() if l.startswith('#|')]

def count(nbs='nbs', flags=()):
    flag_names = re.search(r'^tst_flags\s*=\s*(.*)$', Path('settings.ini').read_text(), re.M)
    known = set((flag_names.group(1) if flag_names else '').split())
    n_nb, run, skipped, never = 0, 0, {}, 0
    for p in sorted(Path(nbs).rglob('*.ipynb')):
        if p.name.startswith('_') or '.ipynb_checkpoints' in p.parts: continue
        n_nb += 1
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            d = directives(''.join(c['source']))
            if any(x.replace(' ', '') == 'eval:false' for x in d): never += 1; continue
            f = [x for x in d if x in known and x not in flags]
            if f: skipped[p.stem] = skipped.get(p.stem, 0) + 1
            else: run += 1
    return n_nb, run, skipped, never

if __name__ == '__main__':
    flags = sys.argv[sys.argv.index('--flags') + 1].split(',') if '--flags' in sys.argv else []
    n_nb, run, skipped, never = count(flags=flags)
    where = ', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))
    print(f"notebooks: {n_nb}; code cells run: {run}; skipped by test flags: {sum(skipped.values())}"
          + (f" ({where}; run them with: nbdev_test --flags slow)" if skipped else '') + f"; never run (eval: false): {never}")
