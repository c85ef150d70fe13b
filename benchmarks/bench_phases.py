"""(f) Where a whole demo run's wall time goes: the demo's recipe on one held-out fold, every method, timed by phase.

The phases are the package's own functions, wrapped with timers for the length of the run (nothing in urbanssl is
changed): each timer counts its function's time minus the time of timed functions it calls, so the phases add up to
the run's wall time (what no timer covers is 'other': the fold split, building models, the run directory's files).
"""
from __future__ import annotations
import contextlib, functools, tempfile, time
from pathlib import Path

# phase -> the functions it times, as (module, attribute); the same function in several modules is one phase
PHASES = {
    'augmentation (two views)': [('urbanssl.recipes', 'Augment.pair'), ('urbanssl.recipes', 'Augment.forward')],
    'pretraining steps': [('urbanssl.train', 'ssl_step')],
    'SSL validation loss': [('urbanssl.train', 'ssl_val_loss')],
    'kNN monitor': [('urbanssl.train', 'knn_monitor')],
    'supervised steps': [('urbanssl.train', 'supervised_epoch')],
    'supervised validation and monitor': [('urbanssl.train', 'predict_logits')],
    'features for the readouts': [('urbanssl.train', 'extract_features')],
    'linear probe (evar, seeds)': [('urbanssl.train', 'evar_probe'), ('urbanssl.train', 'fit_linear_probe')],
    'logistic regression': [('urbanssl.train', 'logreg_probe')],
    'held-out kNN': [('urbanssl.train', 'knn_accuracy')],
    'checkpoint writes': [('urbanssl.train', 'save_checkpoint')],
    'batch loading (indexing)': [('urbanssl.train', 'load_batch')],
    'run directory (results, predictions)': [('urbanssl.cv', 'write_outputs')],
}


class PhaseTimer:
    "Exclusive wall time per phase: a timed call's time, less that of the timed calls inside it."
    def __init__(self): self.seconds, self.calls, self._stack = {}, {}, []

    def wrap(self, phase:str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append(0.); t0 = time.perf_counter()
            try: return fn(*args, **kwargs)
            finally:
                dt, inner = time.perf_counter() - t0, self._stack.pop()
                self.seconds[phase] = self.seconds.get(phase, 0.) + dt - inner
                self.calls[phase] = self.calls.get(phase, 0) + 1
                if self._stack: self._stack[-1] += dt
        return timed

    @contextlib.contextmanager
    def installed(self, phases:dict=PHASES):
        "Wrap the phases' functions for the length of the block, then put the originals back."
        import importlib
        saved = []
        for phase, targets in phases.items():
            for mod, attr in targets:
                m = importlib.import_module(mod)
                owner, name = (getattr(m, attr.split('.')[0]), attr.split('.')[1]) if '.' in attr else (m, attr)
                if not hasattr(owner, name): continue             # a phase this version of the code does not have
                saved.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
                setattr(owner, name, self.wrap(phase, getattr(owner, name)))
        try: yield self
        finally:
            for owner, name, orig in reversed(saved): setattr(owner, name, orig)


def phase_rows(timer:PhaseTimer, wall:float) -> list[dict]:
    "One row per phase (seconds, share of the wall time, calls), largest first, then 'other'."
    rows = [dict(phase=p, seconds=round(s, 2), share=s / wall, calls=timer.calls[p]) for p, s in timer.seconds.items()]
    rows.sort(key=lambda r: -r['seconds'])
    other = wall - sum(timer.seconds.values())
    return rows + [dict(phase='other (split, models, setup)', seconds=round(other, 2), share=other / wall, calls=None)]


def method_overrides(overrides:dict, method:str) -> dict:
    "A variant's overrides for `method`: its settings for every method, updated with those under the method's own name."
    return {**{k: v for k, v in overrides.items() if not isinstance(v, dict)}, **overrides.get(method, {})}


BUILD_KEYS = ('relu_before_pool',)   # variant keys that say how the model is built, not settings of the demo's config

def setting_overrides(overrides:dict) -> dict:
    "A variant's overrides without `BUILD_KEYS`: what goes to `demo_config`."
    return {k: v for k, v in overrides.items() if k not in BUILD_KEYS}


@contextlib.contextmanager
def block_order(relu_before_pool:bool):
    "With `relu_before_pool`, SpecCNN built as before issue 24: conv-BN-ReLU-maxpool (the same numbers; the ReLU on the full map)."
    import torch.nn as nn
    import urbanssl.backbone as bb
    new = bb.conv_block
    def old(ni, nf, stride=1, pool=True):
        b = new(ni, nf, stride, pool)
        return nn.Sequential(b[0], b[1], nn.ReLU(inplace=True), nn.MaxPool2d(2)) if pool else b
    if relu_before_pool: bb.conv_block = old
    try: yield
    finally: bb.conv_block = new


def task_phases(t:dict) -> dict:
    "The demo's recipe (preset `t['preset']`, with `t['overrides']`) on fold `t['fold']` of the dev set, timed per phase."
    import torch
    from urbanssl.cli import demo_config, demo_data
    from urbanssl.cv import run_cv
    from urbanssl.data import load_store
    from urbanssl.distributed import resolve_cpu_precision
    torch.set_num_threads(t.get('threads', 2))
    root, kind = demo_data(None, t.get('preset', 'quick'), progress=False)
    t0 = time.perf_counter(); store = load_store(root, progress=False); load_s = time.perf_counter() - t0
    out, methods = {}, t.get('methods', ['simclr', 'byol', 'supervised', 'random'])
    ov = setting_overrides(t.get('overrides', {}))
    with tempfile.TemporaryDirectory() as tmp, block_order(t.get('overrides', {}).get('relu_before_pool', False)):
        for m in methods:
            timer = PhaseTimer()
            with timer.installed():
                t0 = time.perf_counter()
                res = run_cv(store, m, 'linear', str(t['fold']), Path(tmp)/m, workers=t.get('threads', 2), progress=False,
                             verbose=False, **demo_config(m, t.get('preset', 'quick'), **method_overrides(ov, m)))
                wall = time.perf_counter() - t0
            f = res['folds'][0]
            settings = demo_config(m, t.get('preset', 'quick'), **method_overrides(ov, m))
            out[m] = dict(wall_s=round(wall, 2), phases=phase_rows(timer, wall), accuracy=f['accuracy'], settings=settings,
                          cpu_precision=resolve_cpu_precision(settings.get('cpu_precision', 'fp32')),   # what ran ('auto' resolved)
                          probe_val_accuracy=f.get('probe_val_accuracy'), logreg_accuracy=f.get('logreg_accuracy'))
    return dict(data=kind, n_clips=len(store), store_load_s=round(load_s, 2), fold=t['fold'], overrides=t.get('overrides', {}),
                methods=out, total_s=round(sum(v['wall_s'] for v in out.values()), 2))


# (f)'s comparison: the speed levers off (as the demo ran before them) and on (the current preset), in the same run
# (settings under a method's name apply to that method only, e.g. 'simclr': {'epochs': 60})
# (the stored profile predates SpecCNN's pool-before-ReLU order; add 'relu_before_pool': True to 'before' when re-running it)
PHASE_VARIANTS = {'before': {'knn_every': 1, 'cpu_precision': 'fp32'},   # issue 24's levers off: both monitors after every
                                                                          # pretraining epoch, every method in float32
                  'after': {}}                   # the demo preset as it is


def task_demo_wall(t:dict) -> dict:
    "The whole demo (`run_demo`, preset as it is) on fold `t['fold']` of the dev set with `t['jobs']` processes: wall time, seconds per method."
    from urbanssl.cli import run_demo, demo_data
    root, kind = demo_data(None, t.get('preset', 'quick'), progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = run_demo(Path(tmp)/'demo', str(t['fold']), root, t.get('preset', 'quick'), workers=2, jobs=t['jobs'], progress=False, verbose=False)
        wall = time.perf_counter() - t0
    return dict(data=kind, fold=t['fold'], jobs=t['jobs'], wall_s=round(wall, 2),
                methods={r['method']: dict(seconds=round(r['seconds'], 2), accuracy=r['accuracy_mean']) for r in df.to_dict('records')})


def phase_summary(rows:list) -> list[dict]:
    "Per variant and method: the median over rounds of the wall time and of each phase's seconds."
    import numpy as np
    out = []
    for v in dict.fromkeys(r['variant'] for r in rows):
        rs = [r for r in rows if r['variant'] == v]
        for m in rs[0]['methods']:
            runs = [r['methods'][m] for r in rs]
            phases = {p['phase']: float(np.median([next((q['seconds'] for q in x['phases'] if q['phase'] == p['phase']), 0.) for x in runs]))
                      for p in runs[0]['phases']}
            out.append(dict(variant=v, method=m, wall_s=float(np.median([x['wall_s'] for x in runs])), rounds=len(runs),
                            phases=phases, accuracy=runs[0]['accuracy'], probe_val_accuracy=runs[0]['probe_val_accuracy']))
    return out


def phases_report(res:dict) -> list[str]:
    "The printed lines of (f): per method, wall time before and after, then each phase's seconds and share."
    rows = res.get('phases') or []
    if not rows: return []
    s, r0 = phase_summary(rows), rows[0]
    out = [f"\n(f) Whole-run profile: the demo's recipe on fold {r0['fold']} of the {r0['data']} set ({r0['n_clips']} clips, "
           f"store loaded from its cache in {r0['store_load_s']:.2f} s), every method; median of {s[0]['rounds']} rounds"]
    by = {(x['variant'], x['method']): x for x in s}
    variants, methods = list(dict.fromkeys(x['variant'] for x in s)), list(dict.fromkeys(x['method'] for x in s))
    out.append('method | ' + ' | '.join(f'{v} s' for v in variants) + ' | ' + ' | '.join(f'{v} probe val / test' for v in variants))
    for m in methods + ['all']:
        walls = [sum(by[(v, k)]['wall_s'] for k in methods) if m == 'all' else by[(v, m)]['wall_s'] for v in variants]
        acc = [] if m == 'all' else [f"{100*(by[(v, m)]['probe_val_accuracy'] or float('nan')):.1f} / {100*by[(v, m)]['accuracy']:.1f}" for v in variants]
        out.append(f"{m} | " + ' | '.join(f'{w:.1f}' for w in walls) + (' | ' + ' | '.join(acc) if acc else ''))
    for v in variants:
        tot = sum(by[(v, m)]['wall_s'] for m in methods)
        ph = {}
        for m in methods:
            for p, sec in by[(v, m)]['phases'].items(): ph[p] = ph.get(p, 0.) + sec
        out.append(f"{v}: " + '; '.join(f"{p} {sec:.1f} s ({sec/tot:.0%})" for p, sec in sorted(ph.items(), key=lambda kv: -kv[1])))
    for w in res.get('demo_walls') or []:
        out.append(f"whole demo (run_demo, preset as it is) on fold {w['fold']} with {w['jobs']} process(es), 2 threads in all: "
                   f"{w['wall_s']:.1f} s (" + ', '.join(f"{m} {x['seconds']:.1f} s" for m, x in w['methods'].items()) + ')')
    return out
