"""(d) Where a step's time goes: torch.profiler over our step, split into its parts, and over lightly's."""
from __future__ import annotations
import os, resource, time
from bench_steps import Bench

OP_KINDS = (('convolution', ('convolution',)), ('batch norm', ('batch_norm',)), ('max pooling', ('max_pool',)),
            ('ReLU', ('relu', 'threshold_backward', 'clamp_min')), ('zero fill', ('fill_', 'zero_')),
            ('linear (heads)', ('addmm', 'mm', 'linear')))

def op_kind(name:str) -> str:
    "The kind of a profiled operator, for the breakdown (first match in OP_KINDS; else 'other')."
    n = name.lower()
    return next((k for k, pats in OP_KINDS if any(p in n for p in pats)), 'other')

def profile_step(fn, n:int) -> dict:
    "torch.profiler over `n` calls of `fn`: ms per call of each labelled part, of each operator kind, and page faults."
    import torch
    from torch.profiler import profile, ProfilerActivity
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF), os.times(), time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n): fn()
    wall, c1, r1 = time.perf_counter() - t0, os.times(), resource.getrusage(resource.RUSAGE_SELF)
    ev = prof.key_averages()
    parts = {e.key[len('part: '):]: e.cpu_time_total / 1e3 / n for e in ev if e.key.startswith('part: ')}
    ops = [(e.key, e.self_cpu_time_total / 1e3 / n) for e in ev if not e.key.startswith(('part: ', 'autograd::', 'Optimizer.'))]
    kinds = {}
    for k, ms in ops: kinds[op_kind(k)] = kinds.get(op_kind(k), 0.) + ms
    top = sorted(ops, key=lambda kv: -kv[1])[:8]
    return dict(wall_ms=1e3 * wall / n, parts_ms=parts, kinds_ms=dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
                top_ops_ms=top, page_faults=(r1.ru_minflt - r0.ru_minflt) / n, kernel_s=(c1.system - c0.system) / n)

def task_profile(t:dict) -> dict:
    "Where a step's time goes: our step split into its parts (as `urbanssl.train.ssl_step` runs them), and lightly's step."
    import torch
    from torch.profiler import record_function
    b, out = Bench(t), {}
    for m in ('simclr', 'byol'):
        model, opt, scaler = b.our_model(m)
        steps = iter(range(10**9))
        def ours():   # the body of ssl_step on CPU (no scaler), each part labelled
            with record_function('part: data (indexing, two augmented views)'): v1, v2 = b.views()
            with record_function('part: forward and loss'): loss = model(v1, v2).float()
            with record_function('part: backward'): opt.zero_grad(set_to_none=True); loss.backward()
            with record_function('part: optimizer (Adam)'): opt.step()
            with record_function('part: on_step (BYOL: target EMA)'): model.on_step(next(steps), 10**9)
        light = b.lightly(m)
        for _ in range(t['warmup']): ours(); light()
        out[m] = dict(ours=profile_step(ours, t['n']), lightly=profile_step(light, t['n']))
    return out
