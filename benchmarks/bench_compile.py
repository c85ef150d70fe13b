"""torch.compile of the SimCLR step on the CPU against the eager step, in one process, and whether this CPU has bf16 units.

The demo's SimCLR step (cnn backbone, width 16, batch 128, 2-s log-mel views of 64 x 87, channels_last, Adam) is timed
eager and then compiled (`torch.compile`, default mode), the same model and batch, after warm-up steps; the compile
time is reported apart. bf16 autocast is a lever only on CPUs with bf16 units (AVX512-BF16 or AMX): the flags in
/proc/cpuinfo are printed, and where neither is present, bf16 is not tried.

    python benchmarks/bench_compile.py --threads 1
"""
from __future__ import annotations
import time
from fastcore.script import call_parse


def cpu_bf16_flags() -> list[str]:
    "The bf16 flags of this CPU (avx512_bf16, amx_bf16) found in /proc/cpuinfo; empty where there are none or no such file."
    try: flags = next((l.split(':', 1)[1].split() for l in open('/proc/cpuinfo') if l.startswith('flags')), [])
    except OSError: return []
    return sorted(set(flags) & {'avx512_bf16', 'amx_bf16'})


@call_parse
def main(threads:int=1,      # torch threads (1: as in the demo's two-process mode)
         steps:int=20,       # timed steps of each variant
         batch:int=128):
    "Print eager and compiled ms per step, the compile time and the CPU's bf16 flags."
    import torch
    from urbanssl.backbone import create_backbone
    from urbanssl.simclr import SimCLR
    torch.set_num_threads(threads); torch.manual_seed(0)
    bb, d = create_backbone('cnn', 1, None, cnn_width=16)
    m = SimCLR(bb, d).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x1, x2 = [torch.randn(batch, 1, 64, 87).contiguous(memory_format=torch.channels_last) for _ in range(2)]
    def run(f, n):
        for _ in range(n):
            loss = f(x1, x2); opt.zero_grad(); loss.backward(); opt.step()
    run(m, 10); t = time.perf_counter(); run(m, steps); eager = (time.perf_counter() - t) / steps
    c = torch.compile(m)
    t = time.perf_counter(); run(c, 3); compile_s = time.perf_counter() - t
    t = time.perf_counter(); run(c, steps); comp = (time.perf_counter() - t) / steps
    print(f"threads {threads}, batch {batch}: eager {1000*eager:.0f} ms/step, compiled {1000*comp:.0f} ms/step "
          f"(compiled / eager {comp/eager:.2f}x the time), compile {compile_s:.0f} s")
    print(f"bf16 units on this CPU: {', '.join(cpu_bf16_flags()) or 'none (no avx512_bf16, no amx_bf16): bf16 autocast not tried'}")
