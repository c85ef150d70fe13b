"""Issue 24's gate for a speed lever that changes numerics: its runs against the previous setting's, paired by dev fold.

A lever stays on by default only if, over all ten dev folds, the paired per-fold difference in the probe's validation
accuracy (lever minus previous setting, same fold) has a 95% t-interval whose lower end is at or above -2 points. The
test-accuracy differences are reported beside it and never acted on. Each call writes (or replaces) one section of the
markdown file, named by --name:

    python benchmarks/lever_gate.py --name "cosine, fewer epochs" --new RUNS_A --old RUNS_B --what "how they were run"

With several pretraining seeds per side, give their run folders comma-separated (--new A_s0,A_s1 --old B_s0,B_s1): the
seeds are averaged within each fold before the folds are paired.
"""
from __future__ import annotations
import re
from pathlib import Path
from fastcore.script import call_parse
from urbanssl.checkpoint import write_text_atomic
from urbanssl.stats import fold_summary, paired_differences

GATE = -0.02
READOUTS = (('probe validation (gate)', 'probe_val_accuracy'), ('probe test', 'accuracy'), ('logreg test', 'logreg_accuracy'))


def gate_rows(new:list, old:list, methods:list) -> list[dict]:
    "Per method: each readout's mean accuracy new / old and the paired difference (seed folders averaged per fold), and whether the gate passes."
    out = []
    for m in methods:
        a, b = [Path(x)/m for x in new], [Path(x)/m for x in old]
        d = {k: paired_differences(a, b, k) for _, k in READOUTS}
        out.append(dict(method=m, diffs=d, means={k: (fold_summary(a, k)['mean'], fold_summary(b, k)['mean']) for _, k in READOUTS},
                        passes=d['probe_val_accuracy']['ci_low'] >= GATE - 1e-12))
    return out


def section(name:str, what:str, rows:list) -> str:
    diff = lambda p: f"{100*p['mean']:+.1f} [{100*p['ci_low']:+.1f}, {100*p['ci_high']:+.1f}] ({p['folds_won']}/{p['n_folds']})"
    lines = [f"## {name}", '', what, '', '| method | ' + ' | '.join(f'{n}: new / old (%)' for n, _ in READOUTS) + ' | '
             + ' | '.join(f'{n}: new − old (pts) [95% CI] (folds won)' for n, _ in READOUTS) + ' | gate |',
             '|---|' + '---|' * (2 * len(READOUTS) + 1)]
    for r in rows:
        lines.append(f"| {r['method']} | " + ' | '.join(f"{100*r['means'][k][0]:.1f} / {100*r['means'][k][1]:.1f}" for _, k in READOUTS)
                     + ' | ' + ' | '.join(diff(r['diffs'][k]) for _, k in READOUTS) + f" | {'passes' if r['passes'] else 'fails'} |")
    return '\n'.join(lines) + '\n'


@call_parse
def main(name:str=None,               # the lever (the section's heading; required)
         new:str=None,                # run folder(s) of the lever, one run directory per method inside; comma-separated: one per seed (required)
         old:str=None,                # run folder(s) of the previous setting, same folds (required)
         what:str='',                 # a sentence on what was run (commands, commits)
         methods:str='simclr,byol',
         md:str='benchmarks/levers.md'):
    "Write one lever's gate section into `md` (a section of the same name is replaced)."
    if not (name and new and old): raise SystemExit("--name, --new and --old are required")
    split = lambda v: [Path(x).expanduser() for x in v.split(',')]
    rows = gate_rows(split(new), split(old), methods.split(','))
    f = Path(md)
    head = ("# Speed levers on the dev set: the gate of issue 24\n\nEach section: the lever's runs against the previous "
            "setting's, paired by dev fold (all ten), one pretraining seed unless the section says more. Gate: the 95% t-interval of the paired difference "
            "in the probe's validation accuracy has its lower end at or above -2 points. Test accuracies are reported, never "
            "used. Written by `python benchmarks/lever_gate.py`.\n\n")
    text = f.read_text() if f.exists() else head
    sec = section(name, what, rows)
    pat = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pat.sub(lambda _: sec + '\n', text) if pat.search(text) else text.rstrip('\n') + '\n\n' + sec
    write_text_atomic(f, text)
    for r in rows: print(r['method'], 'passes' if r['passes'] else 'fails', {k: round(100*v['mean'], 1) for k, v in r['diffs'].items()})
