#!/usr/bin/env python
"""urbanssl benchmark (issue 6): data throughput, SSL training-step throughput against lightly, and peak memory.

    python benchmarks/run.py [--quick] [--out FILE.json] [--device auto|cpu|cuda] [--malloc default|tuned]

Every measurement runs in a fresh worker process (this script with `--task`), so one configuration does not leak
into the next, and peak RSS is the worker's own. Inside a worker the variants being compared are interleaved call by
call (the order rotates each round). Each call also records how much CPU other processes used meanwhile; medians are
taken over the quiet calls (other processes below QUIET cores), and rounds are added until there are enough of them
or a time limit passes. The docs page nbs/20_benchmark.ipynb presents the JSON this writes.

This file is the command line and the driver; the measurements live beside it, one concern a file:
bench_measure.py (timing, memory, the machine's load), bench_data.py (a), bench_steps.py (b, c), bench_profile.py (d),
bench_mfu.py (e) and bench_report.py (the printed summary and the targets).
"""
from __future__ import annotations
import json, os, shlex, subprocess, sys, tempfile, time
from pathlib import Path
from fastcore.script import call_parse

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path: sys.path.insert(0, str(HERE))   # the modules beside this file, also when it is imported by path
from bench_measure import Foreign, QUIET, loadavg, machine_info, wait_quiet
from bench_data import task_data, task_data_mem
from bench_steps import SHAPES, task_steps, task_step_mem, step_rows
from bench_profile import task_profile
from bench_mfu import task_mfu, mfu_rows
from bench_phases import task_phases, task_demo_wall, PHASE_VARIANTS
from bench_report import report, targets

TASKS = dict(data=task_data, data_mem=task_data_mem, steps=task_steps, step_mem=task_step_mem, profile=task_profile, mfu=task_mfu, phases=task_phases, demo_wall=task_demo_wall)


# ---------------------------------------------------------------- driver

# glibc returns freed blocks above its mmap threshold (at most 32 MB by default) to the OS, so every training step
# page-faults its large activation tensors in afresh; these settings keep freed memory in the process instead
TUNED_MALLOC = {'MALLOC_MMAP_THRESHOLD_': str(2**30), 'MALLOC_TRIM_THRESHOLD_': str(2**31 - 1)}

def run_task(task:dict, verbose:bool=True) -> dict:
    "Run one task in a fresh worker process and return its result."
    cmd = [sys.executable, str(Path(__file__).resolve()), '--task', json.dumps(task)]
    env = dict(os.environ, **(TUNED_MALLOC if task.get('malloc') == 'tuned' else {}))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark task {task['kind']} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    if verbose: print(f"  [{task['kind']} {task.get('backbone', '')} {task.get('batch', '')} {task.get('pipeline', '')}"
                      f" {time.perf_counter() - t0:.0f}s, load {loadavg()[0] if loadavg() else '?'}]", flush=True)
    return json.loads(lines[-1][len('RESULT '):])

def prepare_data(data_dir:Path, n_per_class:int) -> dict:
    "Synthetic datasets in the Kaggle PNG layout and the audio layout, and their cached stores (built once, reused)."
    from urbanssl.synth import make_synthetic
    from urbanssl.data import load_store
    out, cache = {}, data_dir/'stores'
    for layout in ('us8k_png', 'us8k_audio'):
        t0 = time.perf_counter()
        root = make_synthetic(data_dir/f"{layout}-{n_per_class}", n_per_class=n_per_class, layout=layout, progress=False)
        store = load_store(root, cache_dir=cache, progress=False)
        out[layout] = dict(root=str(root), n=len(store), item_shape=list(store.x.shape[1:]), prepare_s=round(time.perf_counter() - t0, 1))
    return dict(cache=str(cache), **out)

@call_parse
def main(quick:bool=False,                # reduced set (cnn backbone only, memory at batch 32 only), fewer rounds: < ~4 min
         out:str=None,                    # results JSON (default benchmarks/results-{device}[-malloc][-quick].json)
         device:str='auto',               # auto, cpu or cuda
         data_dir:str=None,               # where the synthetic datasets and their stores are kept (default: temp dir)
         configs:str=None,                # (b) as backbone:batch pairs, e.g. "cnn:32,resnet18:128" (default: all four; cnn only with --quick)
         workers:int=2,                   # DataLoader num_workers of the seed-style pipeline
         malloc:str='default',            # glibc allocator settings of the workers: 'default', or 'tuned' (TUNED_MALLOC)
         no_memory:bool=False,            # skip the peak-memory processes (one extra process per variant)
         profile:bool=True,               # (d) profile each config's steps (torch.profiler, one extra process per config)
         mfu:str='auto',                  # (e) model FLOPs utilisation: auto (on CUDA only), on, off, or only (skip (a)-(d))
         mfu_backbone:str='resnet50',     # (e) backbone (the seed's ResNet50 at its 3x128x128 input)
         mfu_batches:str='256',           # (e) batch sizes, e.g. "32,256" (32 is the seed's)
         no_compile:bool=False,           # (e) run the step eagerly instead of torch.compile'd
         peak_tflops:float=None,          # (e) the device's bf16 dense peak in TFLOP/s, where PEAK_BF16 does not know it
         phases:str='off',                # (f) the demo's recipe on one fold, time per phase, levers off and on: on, off, only
         phases_fold:int=1,               # (f) the held-out fold it runs
         phases_rounds:int=1,             # (f) rounds (each runs every variant, the order reversed every other round)
         task:str=None,                   # internal: run one measurement (JSON) in this process and print its result
        ):
    "Benchmark the data path and SSL training steps against a seed-style pipeline, lightly and the backbone alone."
    if task is not None:
        t = json.loads(task)
        print('RESULT ' + json.dumps(TASKS[t['kind']](t)), flush=True)
        return
    memory = not no_memory
    from urbanssl.distributed import get_device
    t_start, load0, whole = time.perf_counter(), loadavg(), Foreign().start()
    dev = get_device(device)
    if mfu not in ('auto', 'on', 'off', 'only'): raise ValueError(f"--mfu must be auto, on, off or only, got {mfu!r}")
    if phases not in ('on', 'off', 'only'): raise ValueError(f"--phases must be on, off or only, got {phases!r}")
    if mfu == 'only' and phases == 'only': raise ValueError("--mfu only and --phases only exclude each other")
    if mfu_backbone not in SHAPES: raise ValueError(f"unknown --mfu_backbone {mfu_backbone!r}; choose from {list(SHAPES)}")
    do_mfu = phases != 'only' and (mfu in ('on', 'only') or (mfu == 'auto' and dev.type == 'cuda'))
    data_dir = Path(data_dir or Path(tempfile.gettempdir())/'urbanssl-bench').expanduser()
    meta = dict(machine_info(dev), command='python benchmarks/run.py ' + ' '.join(shlex.quote(a) for a in sys.argv[1:]),
                quick=quick, loadavg_before=load0)
    print(f"urbanssl benchmark on {meta['device']} ({meta['gpu'] or meta['cpu']}), load average {load0}", flush=True)
    print(f"preparing synthetic data in {data_dir} (generated once, then reused)", flush=True)
    prep = prepare_data(data_dir, 2)
    if malloc not in ('default', 'tuned'): raise ValueError(f"--malloc must be 'default' or 'tuned', got {malloc!r}")
    base = dict(device=str(dev), cache=prep['cache'], malloc=malloc)
    meta.update(malloc=malloc, malloc_env=TUNED_MALLOC if malloc == 'tuned' else {})

    data, steps, profiles = None, [], []
    if mfu != 'only' and phases != 'only':
        # (a) data throughput
        png = prep['us8k_png']['root']
        patience = 5 if quick else 60   # seconds to wait for a quiet machine before each timing
        deadline = time.time() + (100 if quick else 720)   # no extra rounds (for quiet calls) after this
        dcfg = dict(base, root=png, batch=32, workers=workers, rounds=2 if quick else 4, min_time=0.5 if quick else 1.0,
                    max_time=10 if quick else 60)
        waited = wait_quiet(min(patience, max(0., deadline - time.time())))
        data = dict(run_task(dict(dcfg, kind='data')), batch=32, workers=workers, waited_s=round(waited, 1))
        data['memory'] = {p: run_task(dict(dcfg, kind='data_mem', pipeline=p)) if memory else None for p in ('ours', 'seed')}

        # (b) training steps, (c) their memory
        methods = ('simclr', 'byol')
        configs = ([(c.split(':')[0], int(c.split(':')[1])) for c in configs.split(',')] if configs else
                   [('cnn', 32), ('cnn', 128)] + ([] if quick else [('resnet18', 32), ('resnet18', 128)]))
        for bb, B in configs:
            if bb not in SHAPES: raise ValueError(f"unknown backbone {bb!r} in --configs; choose from {list(SHAPES)}")
        variants = [f'{m}_{i}' for m in methods for i in ('ours', 'lightly', 'lightlycl')] + [
            'floor', 'fwd', 'floor_split', 'fwd_split', 'floor_nchw_split', 'data']
        steps, mem = [], {}
        for bb, B in configs:
            scfg = dict(base, root=prep[SHAPES[bb][0]]['root'], backbone=bb, batch=B)
            waited = wait_quiet(min(patience, max(0., deadline - time.time())))
            res = run_task(dict(scfg, kind='steps', variants=variants, warmup=1 if quick or bb == 'resnet18' else 2,
                                reps=3 if quick else 4, max_time=(15 if quick else 40) if bb == 'cnn' else (0 if quick else 90),
                                deadline=deadline))
            if memory and not (quick and B > 32):
                m = run_task(dict(scfg, kind='step_mem', variants=['floor_split', 'floor', 'simclr_ours', 'byol_ours', 'simclr_lightly', 'byol_lightly']))
                mem.update({(bb, B, v): r for v, r in m.items()})
            steps += step_rows(res, mem, bb, B, methods)

        # (d) where a step's time goes: torch.profiler over a few steps of each method, ours and lightly's, per config
        profiles = []
        if profile:
            for bb, B in configs:
                pr = run_task(dict(base, root=prep[SHAPES[bb][0]]['root'], backbone=bb, batch=B, kind='profile',
                                   warmup=2 if bb == 'cnn' else 1, n=3 if bb == 'cnn' else 2))
                profiles += [dict(method=m, backbone=bb, batch=B, **v) for m, v in pr.items()]

    # (e) GPU efficiency: samples/s and MFU of the seed's model, compiled, in bf16 autocast and channels_last
    mfu_res = []
    if do_mfu:
        for B in [int(v) for v in mfu_batches.split(',')]:
            r = run_task(dict(base, root=prep[SHAPES[mfu_backbone][0]]['root'], backbone=mfu_backbone, batch=B, kind='mfu',
                              methods=['simclr', 'byol'], compile=not no_compile, peak_tflops=peak_tflops,
                              warmup=5, n=20 if dev.type == 'cuda' else 2, rounds=5 if dev.type == 'cuda' else 2))
            mfu_res += mfu_rows(r, mfu_backbone, B, not no_compile)

    # (f) where a whole demo run's time goes, per phase, with the levers off (as before) and on (the preset), interleaved
    phase_res = []
    if phases != 'off':
        for rnd in range(phases_rounds):
            for name in (list(PHASE_VARIANTS) if rnd % 2 == 0 else list(PHASE_VARIANTS)[::-1]):
                wait_quiet(30)
                r = run_task(dict(kind='phases', device=str(dev), fold=phases_fold, threads=2, overrides=PHASE_VARIANTS[name]))
                phase_res.append(dict(variant=name, round=rnd, **r))
    demo_walls = []   # the lever no phase timer sees: the methods in two one-thread processes, the whole demo on the same fold
    if phases != 'off' and dev.type == 'cpu':
        wait_quiet(30)
        demo_walls.append(run_task(dict(kind='demo_wall', device=str(dev), fold=phases_fold, jobs=2)))

    res = dict(meta=meta, data=data, steps=steps, profile=profiles, mfu=mfu_res, phases=phase_res, demo_walls=demo_walls, datasets=prep)
    meta.update(loadavg_after=loadavg(), duration_s=time.perf_counter() - t_start, foreign_cores_mean=round(whole.stop(), 2),
                quiet_threshold_cores=QUIET)
    res['targets'] = targets(res)
    out = Path(out or HERE/f"results-{dev.type}{'-malloc' if malloc == 'tuned' else ''}{'-quick' if quick else ''}{'-mfu' if mfu == 'only' else ''}{'-phases' if phases == 'only' else ''}.json")
    out.write_text(json.dumps(res, indent=1))
    print('\n' + report(res))
    print(f"\nwrote {out}")
