"""Issue 24's timing targets: the demo's commands timed end to end, one after another, on data already generated and decoded.

    python benchmarks/time_demo.py --out benchmarks/results-cpu-demo-times.json

Each command (`urbanssl_demo`, `urbanssl_demo --folds 1-3`, `urbanssl_demo --folds 1-10`) runs as a subprocess in an
output folder of its own, after the default synthetic set has been generated and decoded once. For each it records
the wall time, the seconds of each method (from `comparison.csv`), the average CPU cores that other processes used
meanwhile (how quiet the machine was), the accuracies, and the target. The JSON file is rewritten after every
command, so a run that fails keeps what it had finished. `--keep DIR` keeps the run directories.
"""
from __future__ import annotations
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
from fastcore.script import call_parse

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_measure import Foreign, loadavg, machine_info

# (name, arguments of urbanssl_demo, issue 24's target in seconds)
COMMANDS = [('default demo', [], 300), ('folds 1-3', ['--folds', '1-3'], 270), ('ten folds', ['--folds', '1-10'], 900)]


def git_state() -> dict:
    "The commit the package is imported from, and whether its tree had changes."
    import urbanssl
    root = Path(urbanssl.__file__).resolve().parent.parent
    run = lambda *a: subprocess.run(['git', '-C', str(root), *a], capture_output=True, text=True).stdout.strip()
    return dict(commit=run('rev-parse', 'HEAD') or None, dirty=bool(run('status', '--porcelain', '--untracked-files=no')), root=str(root))


def method_rows(out:Path) -> list[dict]:
    "Per method of a finished demo: its seconds and mean accuracies (probe, logistic regression, kNN), from comparison.csv."
    import pandas as pd
    df = pd.read_csv(out/'comparison.csv')
    keep = ['method', 'seconds', 'accuracy_mean', 'accuracy_std', 'logreg_mean', 'knn_mean']
    return df[[c for c in keep if c in df]].to_dict('records')


def time_command(args:list, out:Path, workers:int) -> dict:
    "Run `urbanssl_demo ARGS --out OUT --quiet` once; its wall time, exit status, the foreign load and the methods' rows."
    cmd = ['urbanssl_demo', *args, '--out', str(out), '--workers', str(workers), '--quiet']
    f, la0, t0 = Foreign().start(), loadavg(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall, foreign = time.perf_counter() - t0, f.stop()
    rec = dict(command=' '.join(cmd[:1 + len(args)]), wall_s=round(wall, 1), returncode=p.returncode,
               foreign_cores_mean=round(foreign, 3), loadavg_before=la0, loadavg_after=loadavg())
    if p.returncode: rec['stderr_tail'] = p.stderr[-2000:]
    else: rec['methods'] = method_rows(out)
    return rec


@call_parse
def main(out:str='benchmarks/results-cpu-demo-times.json', # the JSON file written (after every command)
         only:str=None,                                    # comma-separated names of COMMANDS to run (default: all)
         keep:str=None,                                    # a folder to keep the run directories in (default: a temporary one)
         workers:int=2):                                   # torch CPU threads, as urbanssl_demo's --workers
    "Time issue 24's three demo commands, one after another, and write their records to `out`."
    import torch
    from urbanssl.cli import demo_data
    names = [n for n, _, _ in COMMANDS]
    todo = names if only is None else [s.strip() for s in only.split(',')]
    bad = [n for n in todo if n not in names]
    if bad: raise SystemExit(f"--only: unknown command(s) {bad}; choose from {names}")
    t0 = time.perf_counter(); root, kind = demo_data(None, 'quick', progress=False)   # generate and decode once, untimed
    meta = dict(**machine_info(torch.device('cpu')), **git_state(), data=kind, data_root=str(root),
                data_prep_s=round(time.perf_counter() - t0, 1), workers=workers,
                command='python benchmarks/time_demo.py' + ('' if only is None else f' --only "{only}"'))
    dest = Path(out); res = dict(meta=meta, runs=[])
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(keep) if keep else Path(tmp)
        for name, args, target in COMMANDS:
            if name not in todo: continue
            print(f"{name}: urbanssl_demo {' '.join(args)}", flush=True)
            rec = dict(name=name, target_s=target, **time_command(args, base/name.replace(' ', '_'), workers))
            rec['meets_target'] = rec['returncode'] == 0 and rec['wall_s'] <= target
            res['runs'].append(rec)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmpf = dest.with_suffix('.tmp'); tmpf.write_text(json.dumps(res, indent=1)); os.replace(tmpf, dest)
            print(f"  {rec['wall_s']} s (target {target} s, {'met' if rec['meets_target'] else 'missed'}; "
                  f"other processes {rec['foreign_cores_mean']} cores)", flush=True)
            if rec['returncode']: raise SystemExit(f"{name} failed (exit {rec['returncode']}):\n{rec['stderr_tail']}")
    return res
