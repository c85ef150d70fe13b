"""Recipe trials on the dev data: run the demo's recipe with overrides, and append every trial to `trials.csv`.

The rule it serves: recipe choices are made on the dev set (the demo's default synthetic set) and on the probe's
validation split only (taken from the training folds, grouped by recording). The held-out test accuracy is written
beside it for the record, and is never what a choice is made on. Every trial is appended by this script, with its full
settings and the commit it ran on; no row is written by hand.

    python benchmarks/trials.py --name energy-crop --methods simclr,byol --folds 1,2 --set crop_where=energy
"""
from __future__ import annotations
import csv, json, subprocess, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
from fastcore.script import call_parse
from urbanssl.cli import demo_config, demo_data
from urbanssl.config import make_config
from urbanssl.cv import run_cv
from urbanssl.data import load_store, urbanssl_home
from urbanssl.splits import parse_folds

HERE = Path(__file__).parent
TRIALS_CSV = HERE/'trials.csv'
COLUMNS = ['time', 'commit', 'name', 'data', 'method', 'folds', 'overrides', 'val_accuracy', 'logreg_val_accuracy',
           'test_accuracy', 'logreg_test_accuracy', 'knn_accuracy', 'per_fold_val', 'per_fold_test', 'seconds', 'settings']


_STARTED_AT = {}

def commit() -> str:
    "The checkout's commit when this process first asked (its code is what was imported then), '+dirty' when tracked files differed."
    if 'commit' not in _STARTED_AT: _STARTED_AT['commit'] = _read_commit()   # a long trial must not take the commit of a later checkout
    return _STARTED_AT['commit']


def _read_commit() -> str:
    try:
        sha = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=HERE, capture_output=True, text=True).stdout.strip()
        return sha + ('+dirty' if dirty else '')
    except (OSError, subprocess.CalledProcessError): return 'unknown'


commit()   # read when the module is imported, with the code it will run


def parse_value(v:str):
    "A --set value as JSON when it parses (numbers, null, true), else the string itself."
    try: return json.loads(v)
    except json.JSONDecodeError: return v


def trial_row(name:str, data:str, method:str, folds:str, overrides:dict, res:dict, seconds:float) -> dict:
    "One trials.csv row from a run's results.json content."
    f = res['folds']
    mean = lambda k: float(np.mean([r[k] for r in f])) if all(r.get(k) is not None for r in f) else float('nan')
    return dict(time=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), commit=commit(), name=name, data=data,
                method=method, folds=folds, overrides=json.dumps(overrides, sort_keys=True),
                val_accuracy=mean('probe_val_accuracy'), logreg_val_accuracy=mean('logreg_val_accuracy'),
                test_accuracy=mean('accuracy'), logreg_test_accuracy=mean('logreg_accuracy'), knn_accuracy=mean('knn_accuracy'),
                per_fold_val=json.dumps([r.get('probe_val_accuracy') for r in f]), per_fold_test=json.dumps([r['accuracy'] for r in f]),
                seconds=round(seconds, 1), settings=json.dumps({k: v for k, v in res['config'].items()
                                                                if k not in ('folds', 'device', 'workers', 'world_size', 'data')}, sort_keys=True))


def append_row(row:dict, path:Path=TRIALS_CSV) -> None:
    "Append `row` to the trials CSV (header written when the file is new)."
    new = not path.exists()
    with open(path, 'a', newline='') as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new: w.writeheader()
        w.writerow(row)


def dev_store():
    "The dev set (the demo's default synthetic set, generated when missing) as a decoded store."
    root, kind = demo_data(None, 'quick', progress=False)
    if kind != 'synthetic': raise SystemExit(f"trials run on the dev set only (the demo's synthetic set); {root} is {kind}")
    return load_store(root, progress=False)


def run_trial(store, name:str, method:str, folds:str, overrides:dict, out:Path, workers:int=2, csv_path=None) -> dict|None:
    "Run (or resume) one method's trial in `out`; append its row to the trials CSV, unless every fold was already done."
    cfg = demo_config(method, **overrides)
    make_config(method, 'linear', **cfg)                 # refuse a bad override before anything runs
    f = Path(out)/'results.json'
    done = f.exists() and [str(r['fold']) for r in json.loads(f.read_text())['folds']] == [str(i) for i in parse_folds(folds)]
    t0 = time.time()   # run_cv also when done: it refuses a finished run of other settings instead of passing it off as this one
    res = run_cv(store, method, 'linear', folds, out, resume=True, workers=workers, progress=False, verbose=False, **cfg)
    if done: return None                                 # finished before: its row is in the CSV already
    row = trial_row(name, 'dev: synthetic default', method, folds, overrides, res, time.time() - t0)
    append_row(row, Path(csv_path) if csv_path else TRIALS_CSV)
    print(f"{name} {method}: val {100*row['val_accuracy']:.1f}  logreg val {100*row['logreg_val_accuracy']:.1f}  "
          f"(test {100*row['test_accuracy']:.1f}, logreg test {100*row['logreg_test_accuracy']:.1f})  {row['seconds']:.0f} s", flush=True)
    return row


@call_parse
def main(name:str=None,               # the trial's name (also its run folder)
         methods:str='simclr,byol',   # methods to run, comma-separated
         folds:str='1,2',             # held-out folds of the dev set
         set:str='',                  # overrides, key=value separated by spaces or semicolons (e.g. "crop_where=energy cnn_width=32")
         out:str=None,                # run folder (default: urbanssl's cache folder /trials/NAME)
         workers:int=2,               # torch threads
         csv_path:str=None):          # trials CSV (default: benchmarks/trials.csv)
    "Run one recipe trial on the dev set's folds and append its validation and test accuracies to the trials CSV."
    if not name: raise SystemExit("--name is required")
    overrides = dict(kv.split('=', 1) for kv in set.replace(';', ' ').split() if kv)
    overrides = {k: parse_value(v) for k, v in overrides.items()}
    store, out = dev_store(), Path(out or urbanssl_home()/'trials'/name)
    for m in methods.split(','): run_trial(store, name, m, folds, overrides, out/m, workers, csv_path)
