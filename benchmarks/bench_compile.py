"""Step-level levers on the CPU against the fp32 eager step, in one process: bf16 autocast and `torch.compile`.

The demo's steps (cnn backbone, width 16, 2-s log-mel views of 64 x 87, channels_last, Adam): SimCLR at batch 128 and
BYOL at batch 64 with its EMA update. Each variant is timed on the same model and batch after warm-up steps, in rounds
that alternate the variants (so a load that comes and goes hits them alike); the median round is reported, and the
compile time apart. bf16 autocast is tried only on CPUs with bf16 units (AVX512-BF16 or AMX, read from /proc/cpuinfo).

    python benchmarks/bench_compile.py --threads 2,1 --out benchmarks/results-cpu-levers.json
"""
from __future__ import annotations
import json, os, statistics, time
from contextlib import nullcontext
from fastcore.script import call_parse


def make_step(method:str, batch:int, width:int, variant:str):
    "A closure running one training step of `method` in `variant` ('fp32', 'bf16' autocast or 'compiled' fp32)."
    import torch
    from urbanssl.backbone import create_backbone
    from urbanssl.simclr import SimCLR
    from urbanssl.byol import BYOL
    torch.manual_seed(0)
    bb, d = create_backbone('cnn', 1, None, cnn_width=width)
    m = (SimCLR(bb, d) if method == 'simclr' else BYOL(bb, d, hidden_dim=1024, out_dim=256)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], 1e-3)
    x1, x2 = [torch.rand(batch, 1, 64, 87).contiguous(memory_format=torch.channels_last) for _ in range(2)]
    f = torch.compile(m) if variant == 'compiled' else m
    ctx = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if variant == 'bf16' else nullcontext
    def step():
        with ctx(): loss = f(x1, x2).float()
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        if method == 'byol': m.update_target()
    return step


@call_parse
def main(threads:str='2,1',         # torch thread counts, comma-separated (2: one process on 2 cores; 1: two methods at once)
         steps:int=10,              # steps per variant in each round
         rounds:int=5,              # rounds; the median round's ms/step is reported
         methods:str='simclr,byol', # steps to time
         variants:str='fp32,bf16,compiled', # fp32 eager (the reference), bf16 autocast, compiled fp32
         width:int=16,
         out:str=None):             # also write the rows as JSON here
    "Print ms per step of each variant against fp32 eager, measured in the same run."
    import platform, torch
    from urbanssl.distributed import cpu_bf16_units
    flags, rows = cpu_bf16_units(), []
    vs = [v for v in variants.split(',') if v != 'bf16' or flags]
    try: cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    except OSError: cpu = platform.processor()
    for method, n in [(m, int(n)) for n in str(threads).split(',') for m in methods.split(',')]:
        torch.set_num_threads(n)
        print(f"threads {n}, width {width}; bf16 units: {', '.join(flags) or 'none (bf16 not tried)'}")
        batch = 128 if method == 'simclr' else 64
        fns, compile_s = {}, {}
        for v in vs:
            fns[v] = make_step(method, batch, width, v)
            t = time.perf_counter()
            for _ in range(3): fns[v]()
            compile_s[v] = time.perf_counter() - t
        ms = {v: [] for v in vs}
        for _ in range(rounds):
            for v in vs:
                t = time.perf_counter()
                for _ in range(steps): fns[v]()
                ms[v].append(1e3 * (time.perf_counter() - t) / steps)
        ref = statistics.median(ms['fp32']) if 'fp32' in ms else float('nan')
        for v in vs:
            med = statistics.median(ms[v])
            rows.append(dict(method=method, batch=batch, width=width, threads=n, variant=v, ms_per_step=round(med, 1),
                             time_vs_fp32=round(med / ref, 3), warmup_s=round(compile_s[v], 1), bf16_flags=flags))
            print(f"{method} batch {batch}: {v:8s} {med:6.1f} ms/step ({med/ref:.2f}x fp32 eager's time), warm-up {compile_s[v]:.0f} s")
    if out:
        meta = dict(date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), cpu=cpu, n_cpus=os.cpu_count(),
                    torch=torch.__version__, bf16_flags=flags, steps=steps, rounds=rounds,
                    command=f"python benchmarks/bench_compile.py --threads {threads} --variants {variants} --out {out}")
        with open(out, 'w') as fh: json.dump(dict(meta=meta, rows=rows), fh, indent=1)
