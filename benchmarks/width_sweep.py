"""Width sweep on the dev set: the demo recipe at several cnn widths, each SSL method against random init of the same width.

Random init gets stronger as the network widens (a wider random network is a richer random feature map), so a margin
found at one width may not hold at another. This runs SimCLR, BYOL and random init with the demo's `quick` settings
and only `cnn_width` changed, on the dev set's held-out folds, appends each run to `trials.csv` (as `trials.py` does),
and writes `width_sweep.md`: per width, the paired per-fold differences SSL - random init under the probe's validation
split (what a choice would be made on), the probe's test accuracy and the logistic-regression readout. It resumes: a
finished (width, method) is read back, not run again, and appends no second row.

    python benchmarks/width_sweep.py --widths 16,32 --folds 1-5
"""
from __future__ import annotations
import sys, time
from pathlib import Path
from fastcore.script import call_parse
sys.path.insert(0, str(Path(__file__).parent))
from trials import dev_store, run_trial, commit
from urbanssl.checkpoint import write_text_atomic
from urbanssl.data import urbanssl_home
from urbanssl.stats import fold_summary, paired_differences

HERE = Path(__file__).parent
READOUTS = (('probe validation', 'probe_val_accuracy'), ('probe test', 'accuracy'), ('logreg test', 'logreg_accuracy'))


def sweep_markdown(out:Path, widths:list, ssl:list, folds:str, seconds:dict) -> str:
    "The sweep's tables: per width, each method's accuracy and each SSL method's paired difference against random init."
    pct = lambda s: f"{100*s['mean']:.1f} ± {100*s['sd']:.1f}"
    diff = lambda p: f"{100*p['mean']:+.1f} [{100*p['ci_low']:+.1f}, {100*p['ci_high']:+.1f}] ({p['folds_won']}/{p['n_folds']})"
    lines = [f"# Width sweep on the dev set (folds {folds})", '',
             f"The demo's `quick` recipe with only `cnn_width` changed; dev set (the default synthetic set), one pretraining "
             f"seed; commit `{commit()}`. Written by `python benchmarks/width_sweep.py`; each run is also a row of `trials.csv`. "
             "Accuracies: mean ± sample sd (ddof 1) over folds. Differences: SSL − random init of the same width in points, "
             "paired by fold, 95% t-interval, folds won.", '']
    for w in widths:
        d = out/f'width{w}'
        lines += [f"## width {w}", '', '| method | ' + ' | '.join(f'{n} (%)' for n, _ in READOUTS) + ' | time (s) |',
                  '|---|' + '---|' * (len(READOUTS) + 1)]
        for m in ssl + ['random']:
            lines.append(f"| {m} | " + ' | '.join(pct(fold_summary(d/m, k)) for _, k in READOUTS) + f" | {seconds.get((w, m), '—')} |")
        lines += ['', '| difference | ' + ' | '.join(n for n, _ in READOUTS) + ' |', '|---|' + '---|' * len(READOUTS)]
        for m in ssl:
            lines.append(f"| {m} − random | " + ' | '.join(diff(paired_differences(d/m, d/'random', k)) for _, k in READOUTS) + ' |')
        lines.append('')
    return '\n'.join(lines)


@call_parse
def main(widths:str='16,32',            # cnn widths, comma-separated
         methods:str='simclr,byol',     # SSL methods (random init is always run, as the baseline)
         folds:str='1-5',               # held-out folds of the dev set
         out:str=None,                  # run folder (default: urbanssl's cache folder /trials/width-sweep)
         workers:int=2,                 # torch threads
         md:str=None):                  # where the tables go (default: benchmarks/width_sweep.md)
    "Run (or resume) the width sweep and write its paired-difference tables."
    ws, ssl = [int(w) for w in widths.split(',')], methods.split(',')
    store, out = dev_store(), Path(out or urbanssl_home()/'trials'/'width-sweep')
    seconds = {}
    for w in ws:
        for m in ['random'] + ssl:
            t0 = time.time()
            row = run_trial(store, f'width{w}', m, folds, {'cnn_width': w}, out/f'width{w}'/m, workers)
            seconds[(w, m)] = round(row['seconds']) if row else '(earlier run)'
    dest = Path(md) if md else HERE/'width_sweep.md'
    write_text_atomic(dest, sweep_markdown(out, ws, ssl, folds, seconds) + '\n')
    print(dest.read_text())
