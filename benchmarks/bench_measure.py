"""Benchmark measurements: this process's memory, the machine, the CPU other processes use, and interleaved timing."""
from __future__ import annotations
import ctypes, datetime, gc, os, platform, resource, statistics, time
from pathlib import Path

def proc_mb() -> dict:
    "This process's resident set now and its peak (VmRSS, VmHWM) in MB, from /proc (getrusage as a fallback)."
    d = {}
    try:
        for line in open('/proc/self/status'):
            k, _, v = line.partition(':')
            if k in ('VmHWM', 'VmRSS'): d[k] = int(v.split()[0]) / 1024
    except OSError: pass
    if 'VmHWM' not in d: d['VmHWM'] = d['VmRSS'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(rss_mb=round(d['VmRSS'], 1), peak_rss_mb=round(d['VmHWM'], 1))

def loadavg() -> list:
    try: return [round(v, 2) for v in os.getloadavg()]
    except OSError: return []

def cpu_model() -> str:
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def machine_info(device) -> dict:
    "Where and with what the benchmark ran."
    import numpy, torch, torchvision
    try: import lightly; lv = lightly.__version__
    except ImportError: lv = None
    info = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'), host=platform.node(),
                platform=platform.platform(), python=platform.python_version(), cpu=cpu_model(), n_cpus=os.cpu_count(),
                torch=torch.__version__, torchvision=torchvision.__version__, numpy=numpy.__version__, lightly=lv,
                torch_threads=torch.get_num_threads(), torch_interop_threads=torch.get_num_interop_threads(),
                device=str(device), gpu=None)
    try: info['mem_total_gb'] = round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30, 1)
    except (ValueError, OSError): pass
    if device.type == 'cuda': info['gpu'] = torch.cuda.get_device_name(device)
    return info

TCK = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100

def cpu_busy_s() -> float:
    "CPU seconds all processes of the machine have used (from /proc/stat; 0 where it is missing)."
    try: v = [int(x) for x in open('/proc/stat').readline().split()[1:9]]
    except (OSError, ValueError): return 0.
    return (sum(v) - v[3] - v[4]) / TCK   # all but idle and iowait

def own_cpu_s() -> float:
    "CPU seconds used by this process and its children (live DataLoader workers included)."
    t, me, live = os.times(), os.getpid(), 0
    for d in Path('/proc').glob('[0-9]*'):
        try:
            f = (d/'stat').read_text().rsplit(')', 1)[1].split()
            if int(f[1]) == me: live += int(f[11]) + int(f[12])
        except (OSError, ValueError, IndexError): pass
    return t.user + t.system + t.children_user + t.children_system + live / TCK

class Foreign:
    "Average CPU cores used by other processes between `start()` and `stop()`: how disturbed a measurement was."
    def start(self): self.c = (time.perf_counter(), cpu_busy_s(), own_cpu_s()); return self
    def stop(self) -> float:
        w, b, o = self.c
        return max(0., ((cpu_busy_s() - b) - (own_cpu_s() - o)) / max(time.perf_counter() - w, 1e-9))

QUIET = 0.15   # a round is quiet when other processes used less than this many cores on average during it

def wait_quiet(max_wait:float, window:float=1.0) -> float:
    "Wait (at most `max_wait` s) for a `window` during which other processes use < QUIET cores; returns seconds waited."
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        f = Foreign().start(); time.sleep(window)
        if f.stop() < QUIET: break
    return time.perf_counter() - t0

def sync_device(device):
    "Wait for `device`'s queued work (CUDA only; a no-op on the CPU)."
    import torch
    if device.type == 'cuda': torch.cuda.synchronize(device)

def timed(fn, device) -> float:
    "Seconds `fn()` takes (the device synchronised before and after)."
    sync_device(device); t = time.perf_counter(); fn(); sync_device(device)
    return time.perf_counter() - t

def interleave(fns:dict, device, warmup:int, reps:int, max_time:float, deadline:float|None=None, max_rounds:int=30) -> dict:
    "Seconds per call of each of `fns`, called round-robin (order rotated each round), and the foreign load of each call."
    names = list(fns)
    times, foreign, kernel, faults = {k: [] for k in fns}, {k: [] for k in fns}, {k: [] for k in fns}, {k: [] for k in fns}
    for r in range(warmup):
        for k in names: fns[k]()
    t0, r = time.perf_counter(), 0
    enough = lambda: all(sum(f < QUIET for f in foreign[k]) >= reps for k in names)
    late = lambda: time.perf_counter() - t0 > max_time or (deadline is not None and time.time() > deadline)
    # at least `reps` rounds; more, within `max_time` s, until every variant has `reps` calls that ran while
    # other processes left the CPU alone
    while r < reps or (not enough() and not late() and r < max_rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            f, c0, m0 = Foreign().start(), os.times(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[k].append(timed(fns[k], device))
            foreign[k].append(f.stop())
            c1 = os.times()   # share of this process's CPU time spent in the kernel (page faults of fresh buffers)
            kernel[k].append((c1.system - c0.system) / max(c1.user + c1.system - c0.user - c0.system, 1e-9))
            faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - m0)   # pages touched for the first time
        r += 1
    return dict(times=times, foreign=foreign, kernel=kernel, faults=faults)

def med(xs): return statistics.median(xs) if xs else float('nan')

def quiet_median(xs:list, foreign:list) -> tuple:
    "Median of the quiet calls' values when at least 2 calls were quiet, else of all calls; and which it was."
    q = [x for x, f in zip(xs, foreign) if f < QUIET]
    return (med(q), 'quiet') if len(q) >= 2 else (med(xs), 'all')

def reset_peak() -> bool:
    "Free what can be freed, then restart the peak-RSS count (VmHWM) from the current RSS; False where Linux cannot."
    gc.collect()
    try: ctypes.CDLL('libc.so.6').malloc_trim(0)   # give freed heap memory back to the OS
    except (OSError, AttributeError): pass
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False
