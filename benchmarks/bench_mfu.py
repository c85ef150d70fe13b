"""(e) GPU efficiency: samples/s and model FLOPs utilisation of our SimCLR and BYOL steps."""
from __future__ import annotations
import time
from bench_measure import med, sync_device
from bench_steps import Bench

# dense (no sparsity) bfloat16 tensor-core peaks from the vendor's data sheets, FLOP/s; the first name found in the
# device's name wins, so the PCIe H100 comes before the SXM one and the L40s before the L4. Devices not listed (A10G
# among them) give no MFU unless --peak_tflops says their peak.
PEAK_BF16 = (('B200', 2250e12), ('H200', 989.4e12), ('H100 PCIe', 756.5e12), ('H100', 989.4e12), ('A100', 312e12),
             ('L40S', 362.05e12), ('L40', 181.05e12), ('L4', 121e12))

def peak_bf16_flops(name:str|None, override_tflops:float|None=None) -> float|None:
    "The bfloat16 dense peak (FLOP/s) of the device called `name`; `override_tflops` if given; None when unknown."
    if override_tflops: return float(override_tflops) * 1e12
    return next((v for k, v in PEAK_BF16 if name and k.lower() in name.lower()), None)

# the seed notebook's SimCLR protocol on real UrbanSound8K: 15 epochs on the nine training folds of each of ten folds
US8K_CLIPS, SEED_EPOCHS, N_FOLDS = 8732, 15, 10
def protocol_samples(clips:int=US8K_CLIPS, epochs:int=SEED_EPOCHS, folds:int=N_FOLDS) -> int:
    "Training samples the whole protocol draws: every clip is in the training folds of all folds but its own."
    return epochs * (folds - 1) * clips

def step_flops(fn) -> int:
    "FLOPs of one call of `fn` (forward and backward matmuls and convolutions, a multiply-add counted as 2), by torch's counter."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: fn()
    return int(fc.get_total_flops())

def time_steps(fn, device, n:int, rounds:int) -> list:
    "Seconds per call of `fn`, one figure per round of `n` calls (the device synchronised around each round)."
    out = []
    for _ in range(rounds):
        sync_device(device); t0 = time.perf_counter()
        for _ in range(n): fn()
        sync_device(device); out.append((time.perf_counter() - t0) / n)
    return out

def task_mfu(t:dict) -> dict:
    """Samples/s and model FLOPs utilisation of our SimCLR and BYOL steps (`ssl_step`: the device's autocast, channels_last,
    optionally `torch.compile`d), on fixed views (the model alone) and with the two views made each step (the whole step)."""
    import torch
    from urbanssl.train import ssl_step
    from urbanssl.distributed import _amp_dtype   # the dtype ssl_step's autocast uses (None: full precision)
    b, out = Bench(t), {}
    peak = peak_bf16_flops(torch.cuda.get_device_name(b.device) if b.device.type == 'cuda' else None, t.get('peak_tflops'))
    for m in t['methods']:
        model, opt, scaler = b.our_model(m)
        v1, v2 = b.views()
        steps = iter(range(10**9))
        model_step = lambda: ssl_step(model, v1, v2, opt, scaler, next(steps), 10**9)
        whole_step = lambda: ssl_step(model, *b.views(), opt, scaler, next(steps), 10**9)
        flops = step_flops(model_step)   # eager, before compiling: what the step computes, whatever runs it
        t0 = time.perf_counter()
        if t['compile']: model.compile()
        for _ in range(t['warmup']): model_step()   # compiles on the first call
        sync_device(b.device); warm_s = time.perf_counter() - t0
        tm, tw = time_steps(model_step, b.device, t['n'], t['rounds']), time_steps(whole_step, b.device, t['n'], t['rounds'])
        sm, sw = med(tm), med(tw)
        out[m] = dict(flops_per_step=flops, step_s=sm, whole_step_s=sw, samples_per_s=b.B / sm, whole_samples_per_s=b.B / sw,
                      achieved_tflops=flops / sm / 1e12, mfu=None if peak is None else flops / sm / peak,
                      whole_mfu=None if peak is None else flops / sw / peak, compile_and_warmup_s=warm_s,
                      step_s_rounds=tm, whole_step_s_rounds=tw)
        del model, opt
        if b.device.type == 'cuda': torch.cuda.empty_cache()
    return dict(out, peak_flops=peak, input_shape=list(b.x.shape[1:]), recipe=b.recipe, autocast=str(_amp_dtype(b.device)))

def mfu_rows(res:dict, backbone:str, batch:int, compiled:bool) -> list:
    "One row per method of the (e) table; the seed's whole SimCLR protocol timed at the whole step's rate."
    n = protocol_samples()
    return [dict(method=m, backbone=backbone, batch=batch, input_shape=res['input_shape'], autocast=res['autocast'],
                 channels_last=True, compiled=compiled, peak_tflops=None if res['peak_flops'] is None else res['peak_flops'] / 1e12,
                 protocol_samples=n, protocol_hours=n / r['whole_samples_per_s'] / 3600, **r)
            for m, r in res.items() if isinstance(r, dict)]
