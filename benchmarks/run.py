#!/usr/bin/env python
"""urbanssl benchmark (issue 6): data throughput, SSL training-step throughput against lightly, and peak memory.

    python benchmarks/run.py [--quick] [--out FILE.json] [--device auto|cpu|cuda] [--malloc default|tuned]

Every measurement runs in a fresh worker process (this script with `--task`), so one configuration does not leak
into the next, and peak RSS is the worker's own. Inside a worker the variants being compared are interleaved call by
call (the order rotates each round). Each call also records how much CPU other processes used meanwhile; medians are
taken over the quiet calls (other processes below QUIET cores), and rounds are added until there are enough of them
or a time limit passes. The docs page nbs/20_benchmark.ipynb presents the JSON this writes.
"""
from __future__ import annotations
import ctypes, datetime, gc, json, os, platform, resource, shlex, statistics, subprocess, sys, tempfile, time
from pathlib import Path
from fastcore.script import call_parse

HERE = Path(__file__).resolve().parent
SHAPES = {'cnn': ('us8k_audio', 'audio'), 'resnet18': ('us8k_png', 'image'),   # backbone -> (store layout, augment recipe)
          'resnet50': ('us8k_png', 'image')}   # the seed's model on its input: 3x128x128 mel pictures, its image transforms


# ---------------------------------------------------------------- process measurements

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

def _sync(device):
    import torch
    if device.type == 'cuda': torch.cuda.synchronize(device)

def timed(fn, device) -> float:
    "Seconds `fn()` takes (the device synchronised before and after)."
    _sync(device); t = time.perf_counter(); fn(); _sync(device)
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


# ---------------------------------------------------------------- (a) data throughput

class SeedStyleDataset:
    "The seed notebook's input path: open each PNG with PIL and apply torchvision per-sample transforms, two views."
    def __init__(self, files, size:int):
        from torchvision import transforms as T
        self.files = list(files)
        self.tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(),
                             T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(0.2), T.ToTensor()])
    def __len__(self): return len(self.files)
    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.files[i]) as im: im = im.convert('RGB')
        return self.tf(im), self.tf(im)

def seed_loader(store, batch:int, workers:int):
    import torch
    files = [str(store.root/f) for f in store.meta['file']]
    return torch.utils.data.DataLoader(SeedStyleDataset(files, store.cfg.image_size), batch_size=batch, shuffle=True,
                                       num_workers=workers, persistent_workers=workers > 0, drop_last=True)

def seed_epoch(loader, device) -> int:
    "One epoch of the seed-style pipeline, both views moved to `device`; returns the number of samples."
    n = 0
    for v1, v2 in loader:
        v1, v2 = v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)
        n += len(v1)
    return n

def ours_epoch(store, aug, g, batch:int, seed:int, device) -> int:
    "One epoch of our pipeline: batches by indexing the cached store, two augmented views on `device`."
    import numpy as np
    from urbanssl.distributed import epoch_batches, load_batch
    n = 0
    for b in epoch_batches(np.arange(len(store)), batch, seed):
        xb = load_batch(store.x, b, device)
        v1, v2 = aug(xb, generator=g), aug(xb, generator=g)
        n += len(b)
    return n

def task_data(t:dict) -> dict:
    "First load (decode) of the PNG store, then ours vs seed-style steady-state epochs, interleaved."
    import torch
    from urbanssl.augment import make_augment
    from urbanssl.data import load_store
    from urbanssl.distributed import get_device
    device = get_device(t['device'])
    out = {}
    with tempfile.TemporaryDirectory(prefix='urbanssl-bench-cache-') as cache:
        tt = time.perf_counter(); store = load_store(t['root'], cache_dir=cache, progress=False)
        out['first_load_s'] = time.perf_counter() - tt
        tt = time.perf_counter(); store = load_store(t['root'], cache_dir=cache, progress=False)
        out['cached_open_s'] = time.perf_counter() - tt
        out.update(n_files=len(store), item_shape=list(store.x.shape[1:]), store_dtype=str(store.x.dtype),
                   first_load_files_per_s=len(store) / out['first_load_s'])
        aug, g = make_augment('image'), torch.Generator(device).manual_seed(0)
        loader = seed_loader(store, t['batch'], t['workers'])
        ep = iter(range(10**9))
        def ours():   # enough epochs for >= min_time seconds
            n, tt = 0, time.perf_counter()
            while True:
                n += ours_epoch(store, aug, g, t['batch'], next(ep), device); _sync(device)
                if time.perf_counter() - tt >= t['min_time']: return n / (time.perf_counter() - tt)
        def seed():
            tt = time.perf_counter(); n = seed_epoch(loader, device); _sync(device)
            return n / (time.perf_counter() - tt)
        ours(); seed()   # warm-up: page cache, worker start-up, kernels
        rounds, foreign, t0, r = {'ours': [], 'seed': []}, {'ours': [], 'seed': []}, time.perf_counter(), 0
        enough = lambda: all(sum(f < QUIET for f in v) >= t['rounds'] for v in foreign.values())
        while r < t['rounds'] or (not enough() and time.perf_counter() - t0 < t['max_time'] and r < 20):
            for k, f in ([('ours', ours), ('seed', seed)] if r % 2 == 0 else [('seed', seed), ('ours', ours)]):
                fl = Foreign().start()
                rounds[k].append(f())
                foreign[k].append(fl.stop())
            r += 1
        del loader
    (o, so), (sd, ss) = quiet_median(rounds['ours'], foreign['ours']), quiet_median(rounds['seed'], foreign['seed'])
    out.update(ours_samples_per_s=o, seed_samples_per_s=sd, speedup=o / sd, rounds=rounds, foreign=foreign,
               used={'ours': so, 'seed': ss})
    return out

def task_data_mem(t:dict) -> dict:
    "Peak memory of two epochs of one data pipeline (ours from the cached store, or seed-style)."
    import torch
    from urbanssl.augment import make_augment
    from urbanssl.data import load_store
    from urbanssl.distributed import get_device
    device = get_device(t['device'])
    store = load_store(t['root'], cache_dir=t['cache'], progress=False)
    base = proc_mb()
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    if t['pipeline'] == 'ours':
        aug, g = make_augment('image'), torch.Generator(device).manual_seed(0)
        for e in range(2): ours_epoch(store, aug, g, t['batch'], e, device)
    else:
        loader = seed_loader(store, t['batch'], t['workers'])
        for e in range(2): seed_epoch(loader, device)
        del loader; gc.collect()
    out = dict(base_rss_mb=base['rss_mb'], **proc_mb())
    out['worker_peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1) if t['pipeline'] == 'seed' and t['workers'] else None
    if device.type == 'cuda': out['cuda_peak_mb'] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


# ---------------------------------------------------------------- (b) training steps

def lightly_models():
    "lightly's SimCLR and BYOL, assembled as in lightly's examples (examples/pytorch/simclr.py, byol.py)."
    import copy, torch.nn as nn
    from lightly.models.modules.heads import SimCLRProjectionHead, BYOLProjectionHead, BYOLPredictionHead
    from lightly.models.utils import deactivate_requires_grad

    class LightlySimCLR(nn.Module):
        def __init__(self, backbone, feat_dim, hidden_dim, out_dim):
            super().__init__()
            self.backbone = backbone   # urbanssl.SimCLR's head is Linear-ReLU-Linear: lightly's v1 head without BN
            self.projection_head = SimCLRProjectionHead(feat_dim, hidden_dim, out_dim, batch_norm=False)
        def forward(self, x): return self.projection_head(self.backbone(x).flatten(start_dim=1))

    class LightlyBYOL(nn.Module):
        def __init__(self, backbone, feat_dim, hidden_dim, out_dim):
            super().__init__()
            self.backbone = backbone
            self.projection_head = BYOLProjectionHead(feat_dim, hidden_dim, out_dim)
            self.prediction_head = BYOLPredictionHead(out_dim, hidden_dim, out_dim)
            self.backbone_momentum = copy.deepcopy(self.backbone)
            self.projection_head_momentum = copy.deepcopy(self.projection_head)
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.projection_head_momentum)
        def forward(self, x): return self.prediction_head(self.projection_head(self.backbone(x).flatten(start_dim=1)))
        def forward_momentum(self, x):
            return self.projection_head_momentum(self.backbone_momentum(x).flatten(start_dim=1)).detach()
    return LightlySimCLR, LightlyBYOL

class Bench:
    "Builds the step functions of one (backbone, batch) configuration on one store."
    def __init__(self, t:dict):
        import numpy as np, torch
        from urbanssl.augment import make_augment
        from urbanssl.data import load_store, fold_split
        from urbanssl.distributed import get_device
        self.t, self.device = t, get_device(t['device'])
        self.store = load_store(t['root'], cache_dir=t['cache'], progress=False)
        self.x, self.B, self.recipe = self.store.x, t['batch'], SHAPES[t['backbone']][1]
        self.train_idx, self.test_idx = fold_split(self.store, 1)
        if len(self.train_idx) < self.B: raise ValueError(f"{t['root']}: {len(self.train_idx)} training clips < batch {self.B}")
        self.rng = np.random.default_rng(0)
        self.augment = make_augment(self.recipe)
        self.g = torch.Generator(self.device).manual_seed(0)
        from urbanssl.config import make_config
        from urbanssl.distributed import memory_format
        self.fmt = memory_format(self.device, make_config('simclr').channels_last)   # the format urbanssl trains in
        self.nchw = memory_format(self.device, 'cuda')   # lightly's examples' format: NCHW on CPU

    def idx(self): return self.rng.choice(self.train_idx, self.B, replace=False)
    def views(self):
        from urbanssl.distributed import load_batch
        xb = load_batch(self.x, self.idx(), self.device)
        return self.augment(xb, generator=self.g), self.augment(xb, generator=self.g)

    def config(self, method:str) -> dict:
        from urbanssl.config import make_config, run_record
        cfg = make_config(method, 'linear', backbone=self.t['backbone'], augment=self.recipe, batch_size=self.B)
        return dict(run_record(cfg), in_chans=int(self.x.shape[1]))

    def our_model(self, method:str):
        "The method model, optimiser and scaler as `urbanssl.train.FoldTrainer` builds them (its config's memory format)."
        import torch
        from urbanssl.backbone import create_backbone
        from urbanssl.config import METHODS, config_from_record
        from urbanssl.distributed import derive_seed, make_scaler, memory_format
        cfg, dev = config_from_record(self.config(method)), self.device
        torch.manual_seed(derive_seed(cfg.seed, 'init'))
        bb, feat = create_backbone(cfg.backbone, int(self.x.shape[1]))
        model = METHODS[method].from_config(bb, feat, cfg).to(dev, memory_format=memory_format(dev, cfg.channels_last))
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
        return model, opt, make_scaler(dev)

    def ours(self, method:str):
        "One training step exactly as urbanssl.train runs it: `ssl_step` on two views of a batch."
        from urbanssl.train import ssl_step
        model, opt, scaler = self.our_model(method)
        steps = iter(range(10**9))
        return lambda: ssl_step(model, *self.views(), opt, scaler, next(steps), 10**9)

    def lightly(self, method:str, channels_last:bool=False):
        """An equivalent step from lightly's parts, fed by the same store indexing and augment module (NCHW on CPU, as in
        lightly's examples; `channels_last` puts its model in our format instead, to show what the format alone gives)."""
        import torch
        from lightly.loss import NTXentLoss, NegativeCosineSimilarity
        from lightly.models.utils import update_momentum
        from urbanssl.backbone import create_backbone
        from urbanssl.distributed import derive_seed, autocast_for, make_scaler
        cfg, dev = self.config(method), self.device
        torch.manual_seed(derive_seed(cfg['seed'], 'init'))
        bb, feat = create_backbone(cfg['backbone'], cfg['in_chans'])
        LSimCLR, LBYOL = lightly_models()
        model = (LSimCLR if method == 'simclr' else LBYOL)(bb, feat, cfg['hidden_dim'], cfg['out_dim']).to(
            dev, memory_format=self.fmt if channels_last else self.nchw)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg['lr'], weight_decay=cfg['weight_decay'])
        scaler = make_scaler(dev)
        crit = NTXentLoss(temperature=cfg['temperature']) if method == 'simclr' else NegativeCosineSimilarity()
        def step():
            x0, x1 = self.views()
            with autocast_for(dev):
                if method == 'simclr': loss = crit(model(x0), model(x1))
                else:
                    update_momentum(model.backbone, model.backbone_momentum, m=cfg['tau'])
                    update_momentum(model.projection_head, model.projection_head_momentum, m=cfg['tau'])
                    p0, z0 = model(x0), model.forward_momentum(x0)
                    p1, z1 = model(x1), model.forward_momentum(x1)
                    loss = 0.5 * (crit(p0, z1) + crit(p1, z0))
            scaler.scale(loss.float()).backward(); scaler.step(opt); scaler.update(); opt.zero_grad()
        return step

    def backbone(self, nchw:bool=False):
        "The backbone in our memory format (or in lightly's examples' one), and 2B random inputs like the views."
        import torch
        from urbanssl.backbone import create_backbone
        cfg, fmt = self.config('simclr'), self.nchw if nchw else self.fmt
        bb = create_backbone(cfg['backbone'], cfg['in_chans'])[0].to(self.device, memory_format=fmt)
        xx = torch.rand(2 * self.B, *self.x.shape[1:], device=self.device)   # NCHW, as the augmentation returns it
        return bb, xx

    def floor(self, split:bool=False, nchw:bool=False):
        "The backbone's forward and backward alone on the two views (2B inputs on the device), together or one by one."
        from urbanssl.distributed import autocast_for
        bb, xx = self.backbone(nchw)
        parts = xx.chunk(2) if split else [xx]
        def step():
            bb.zero_grad(set_to_none=True)
            with autocast_for(self.device): y = sum(bb(x).float().sum() for x in parts)
            y.backward()
        return step

    def target_forward(self, split:bool=False):
        "The backbone's forward alone, no gradient, on the two views: the extra backbone work of BYOL's target."
        import torch
        from urbanssl.distributed import autocast_for
        bb, xx = self.backbone()
        parts = xx.chunk(2) if split else [xx]
        def step():
            with torch.no_grad(), autocast_for(self.device):
                for x in parts: bb(x)
        return step

    def data(self):
        "Our data part alone: store indexing and the two augmented views."
        return lambda: self.views()

    def make(self, variant:str):
        if variant == 'data': return self.data()
        if variant.startswith('floor'):   # 'floor', 'floor_split', 'floor_nchw_split'
            return self.floor(split=variant.endswith('_split'), nchw='_nchw' in variant)
        if variant.startswith('fwd'): return self.target_forward(split=variant.endswith('_split'))   # 'fwd', 'fwd_split'
        method, impl = variant.split('_')   # e.g. 'simclr_ours', 'byol_lightly', 'byol_lightlycl'
        if impl == 'lightlycl': return self.lightly(method, channels_last=True)
        return getattr(self, impl)(method)

def task_steps(t:dict) -> dict:
    "Seconds per step of every variant of one (backbone, batch), interleaved."
    import torch
    b = Bench(t)
    fns = {v: b.make(v) for v in t['variants']}
    res = interleave(fns, b.device, t['warmup'], t['reps'], t['max_time'], t.get('deadline'))
    return dict(res, input_shape=list(b.x.shape[1:]), recipe=b.recipe, n_store=len(b.store))

def reset_peak() -> bool:
    "Free what can be freed, then restart the peak-RSS count (VmHWM) from the current RSS; False where Linux cannot."
    gc.collect()
    try: ctypes.CDLL('libc.so.6').malloc_trim(0)   # give freed heap memory back to the OS
    except (OSError, AttributeError): pass
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False

def task_step_mem(t:dict) -> dict:
    "Peak memory of each variant over two steps: built, run and freed one after another, the peak reset in between."
    import torch
    b, out = Bench(t), {}
    cuda = b.device.type == 'cuda'
    for v in t['variants']:   # ours before lightly: lightly's own import then counts for lightly only
        ok = reset_peak()
        if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(b.device)
        base, f = proc_mb(), b.make(v)
        for _ in range(2): f()
        _sync(b.device)
        out[v] = dict(base_rss_mb=base['rss_mb'], **proc_mb(), peak_reset=ok)
        if cuda: out[v]['cuda_peak_mb'] = round(torch.cuda.max_memory_allocated(b.device) / 2**20, 1)
        del f
    return out

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

# ---------------------------------------------------------------- (e) GPU efficiency: model FLOPs utilisation

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
        _sync(device); t0 = time.perf_counter()
        for _ in range(n): fn()
        _sync(device); out.append((time.perf_counter() - t0) / n)
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
        _sync(b.device); warm_s = time.perf_counter() - t0
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

TASKS = dict(data=task_data, data_mem=task_data_mem, steps=task_steps, step_mem=task_step_mem, profile=task_profile, mfu=task_mfu)


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

def step_rows(res:dict, mem:dict, backbone:str, batch:int, methods) -> list:
    "One result row per method from the interleaved times of one (backbone, batch)."
    from urbanssl.config import make_config
    fg, times = res['foreign'], res['times']
    tm = {k: quiet_median(v, fg[k])[0] for k, v in times.items()}
    nq = lambda k: sum(f < QUIET for f in fg[k])
    nan = float('nan')
    sep = make_config('simclr').views == 'separate'   # our step passes the views as the default config says
    fl, fw = ('floor_split', 'fwd_split') if sep else ('floor', 'fwd')
    rows = []
    for m in methods:
        o, l, lc = f'{m}_ours', f'{m}_lightly', f'{m}_lightlycl'
        ours, light, floor, fwd = tm[o], tm[l], tm[fl], tm.get(fw, nan)
        row = dict(method=m, backbone=backbone, batch=batch, input_shape=res['input_shape'], augment=res['recipe'],
                   our_views='separate' if sep else 'joint',
                   ours_ms=1e3 * ours, lightly_ms=1e3 * light, lightly_cl_ms=1e3 * tm.get(lc, nan), floor_ms=1e3 * floor,
                   floor_joint_ms=1e3 * tm.get('floor', nan), floor_nchw_ms=1e3 * tm.get('floor_nchw_split', nan),
                   data_ms=1e3 * tm.get('data', nan), target_fwd_ms=1e3 * fwd,
                   ours_samples_per_s=batch / ours, lightly_samples_per_s=batch / light, floor_samples_per_s=batch / floor,
                   ours_vs_lightly=light / ours, ours_vs_lightly_cl=tm.get(lc, nan) / ours, ours_over_floor=ours / floor - 1,
                   rounds=len(times[fl]), quiet_calls={k: nq(k) for k in (o, l, fl)},
                   foreign_cores={k: [round(f, 2) for f in fg[k]] for k in (o, l, fl)})
        row['quiet_rounds'] = min(row['quiet_calls'].values())
        row['kernel_cpu_share'] = {k: round(med(res['kernel'][k]), 3) for k in (o, l, fl) if k in res['kernel']}
        row['page_faults'] = {k: int(med(res['faults'][k])) for k in (o, l, lc, fl) if k in res.get('faults', {})}
        # per-round ratios (same round, both calls quiet): min, median and max show whether the comparison is inside the noise
        r = [x / y for y, x, fo, fx in zip(times[o], times[l], fg[o], fg[l]) if fo < QUIET and fx < QUIET] or \
            [x / y for y, x in zip(times[o], times[l])]
        row['ours_vs_lightly_paired'] = [round(min(r), 3), round(med(r), 3), round(max(r), 3)]
        row['ours_vs_lightly_rounds'] = len(r)
        if m == 'byol':  # BYOL's target network adds a backbone forward that no implementation can skip
            row['method_floor_ms'] = 1e3 * (floor + fwd)
            row['ours_over_method_floor'] = ours / (floor + fwd) - 1
        row['memory'] = {k: mem.get((backbone, batch, v)) for k, v in (('ours', o), ('lightly', l), ('floor', fl))}
        row['times_ms'] = {k: [round(1e3 * x, 2) for x in v] for k, v in res['times'].items()
                           if k in (o, l, lc) or not k.endswith(('_ours', '_lightly', '_lightlycl'))}
        rows.append(row)
    return rows

def fmt_table(rows:list, cols:list) -> str:
    "A plain text table of `rows` (dicts) with `cols` as (header, key or function, format)."
    cells = [[h for h, _, _ in cols]]
    for r in rows:
        cells.append([(f.format(k(r) if callable(k) else r.get(k)) if (k(r) if callable(k) else r.get(k)) is not None else '-')
                      for _, k, f in cols])
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ['  '.join(c.rjust(w[i]) for i, c in enumerate(row)) for row in cells]
    return '\n'.join([lines[0], '  '.join('-' * x for x in w), *lines[1:]])

MFU_COLS = [('method', 'method', '{}'), ('backbone', 'backbone', '{}'), ('input', lambda r: 'x'.join(map(str, r['input_shape'])), '{}'),
            ('batch', 'batch', '{}'), ('compiled', 'compiled', '{}'), ('autocast', 'autocast', '{}'),
            ('GFLOP/step', lambda r: r['flops_per_step'] / 1e9, '{:.1f}'), ('samples/s', 'samples_per_s', '{:.0f}'),
            ('TFLOP/s', 'achieved_tflops', '{:.1f}'), ('MFU', 'mfu', '{:.1%}'),
            ('whole step samples/s', 'whole_samples_per_s', '{:.0f}'), ('whole step MFU', 'whole_mfu', '{:.1%}'),
            ('seed protocol h', 'protocol_hours', '{:.2f}'), ('compile+warmup s', 'compile_and_warmup_s', '{:.0f}')]

def mfu_report(res:dict) -> list:
    "The (e) lines of the printed summary."
    rows = res.get('mfu') or []
    if not rows: return []
    peak = rows[0]['peak_tflops']
    return [f"\n(e) Model FLOPs utilisation: our ssl_step on fixed views (the model), and with the two views made each step "
            f"(whole step); FLOPs by torch.utils.flop_counter; peak {'unknown (give --peak_tflops)' if peak is None else f'{peak:.1f} TFLOP/s bf16 dense'}; "
            f"seed protocol = {rows[0]['protocol_samples']:,} samples ({SEED_EPOCHS} epochs x {N_FOLDS - 1} training folds x {N_FOLDS} folds "
            f"of {US8K_CLIPS} clips) at the whole step's rate",
            fmt_table(rows, MFU_COLS)]

def report(res:dict) -> str:
    "The printed summary of a results dict."
    m, d, out = res['meta'], res['data'], []
    out.append(f"urbanssl benchmark, {m['date']}: {m['device']} ({m['gpu'] or m['cpu']}), {m['n_cpus']} CPUs, "
               f"torch {m['torch']} ({m['torch_threads']} threads), lightly {m['lightly']}, {m.get('malloc', 'default')} malloc; "
               f"load average before {m['loadavg_before']}, after {m['loadavg_after']}; other processes used "
               f"{m['foreign_cores_mean']} cores on average; {m['duration_s']:.0f} s")
    if d is None: return '\n'.join(out + mfu_report(res) + [f"\nTargets: MFU >= 40%: {res['targets']['mfu_40pct']}"])
    out.append(f"\n(a) Data throughput, {d['n_files']} synthetic Kaggle PNGs -> {d['item_shape']}, batch {d['batch']}, two views, "
               f"seed-style DataLoader num_workers={d['workers']}")
    out.append(fmt_table([
        dict(p='ours: cached store -> indexing -> make_augment("image") x2', s=d['ours_samples_per_s'], m=(d['memory']['ours'] or {}).get('peak_rss_mb')),
        dict(p='seed-style: PIL open + torchvision transforms x2, DataLoader', s=d['seed_samples_per_s'], m=(d['memory']['seed'] or {}).get('peak_rss_mb'))],
        [('pipeline', 'p', '{}'), ('samples/s', 's', '{:.0f}'), ('peak RSS MB', 'm', '{:.0f}')]))
    out.append(f"speed-up {d['speedup']:.1f}x (target >= 10x: {'met' if d['speedup'] >= 10 else 'MISSED'}; "
               f"quiet calls: ours {sum(f < QUIET for f in d['foreign']['ours'])}/{len(d['foreign']['ours'])}, "
               f"seed {sum(f < QUIET for f in d['foreign']['seed'])}/{len(d['foreign']['seed'])}); "
               f"first load (decode) {d['first_load_s']:.2f} s ({d['first_load_files_per_s']:.0f} files/s), cached reopen {d['cached_open_s']:.3f} s")
    out.append("\n(b) SSL training step, samples/s (median of the quiet interleaved calls, or of all when < 2 were quiet); "
               "floor = backbone forward+backward on both views, as our step passes them (views apart, channels_last); "
               "joint: both views as one batch; NCHW: views apart in lightly's examples' format")
    cols = [('method', 'method', '{}'), ('backbone', 'backbone', '{}'), ('input', lambda r: 'x'.join(map(str, r['input_shape'])), '{}'),
            ('batch', 'batch', '{}'), ('ours', 'ours_samples_per_s', '{:.1f}'), ('lightly', 'lightly_samples_per_s', '{:.1f}'),
            ('floor', 'floor_samples_per_s', '{:.1f}'), ('floor, joint views', lambda r: r['batch'] * 1e3 / r['floor_joint_ms'], '{:.1f}'),
            ('floor, NCHW', lambda r: r['batch'] * 1e3 / r['floor_nchw_ms'], '{:.1f}'),
            ('ours/lightly', 'ours_vs_lightly', '{:.2f}x'),
            ('per round min/med/max', lambda r: '/'.join(f'{v:.2f}' for v in r['ours_vs_lightly_paired']), '{}'),
            ('ours/lightly in channels_last', 'ours_vs_lightly_cl', '{:.2f}x'),
            ('over floor', 'ours_over_floor', '{:+.0%}'), ('over floor+target fwd', 'ours_over_method_floor', '{:+.0%}'),
            ('data ms', 'data_ms', '{:.0f}'), ('quiet/rounds', lambda r: f"{r['quiet_rounds']}/{r['rounds']}", '{}')]  # fewest quiet calls of ours, lightly, floor
    out.append(fmt_table(res['steps'], cols))
    mem = lambda v, k: (lambda r: (r['memory'][v] or {}).get(k))
    key = 'cuda_peak_mb' if m['device'].startswith('cuda') else 'peak_rss_mb'
    out.append(f"\n(c) Peak memory, MB ({'torch.cuda.max_memory_allocated' if key == 'cuda_peak_mb' else 'peak RSS, VmHWM'} "
               "of a fresh process running two steps of one variant)")
    out.append(fmt_table(res['steps'], cols[:4] + [('ours', mem('ours', key), '{:.0f}'), ('lightly', mem('lightly', key), '{:.0f}'),
                                                   ('floor', mem('floor', key), '{:.0f}')]))
    if res.get('profile'):
        out.append("\n(d) Where a step's time goes (torch.profiler, ms per step; parts of our step as ssl_step runs them)")
        for p in res['profile']:
            o, l = p['ours'], p['lightly']
            out.append(f"{p['method']} {p['backbone']} batch {p['batch']}: ours {o['wall_ms']:.0f} ms "
                       f"({o['page_faults']:.0f} page faults, {1e3 * o['kernel_s']:.0f} ms in the kernel), "
                       f"lightly {l['wall_ms']:.0f} ms ({l['page_faults']:.0f} faults, {1e3 * l['kernel_s']:.0f} ms kernel)")
            out.append('  parts: ' + ', '.join(f"{k} {v:.0f}" for k, v in o['parts_ms'].items()))
            out.append('  operators, ours | lightly: ' + ', '.join(f"{k} {v:.0f} | {l['kinds_ms'].get(k, 0):.0f}" for k, v in o['kinds_ms'].items()))
    out += mfu_report(res)
    t = res['targets']
    out.append(f"\nTargets: data >= 10x: {t['data_10x']}; steps >= lightly: {t['steps_vs_lightly']}; within 15% of floor: {t['steps_within_15pct']}"
               + (f"; MFU >= 40%: {t['mfu_40pct']}" if t.get('mfu_40pct') else ''))
    return '\n'.join(out)

def targets(res:dict) -> dict:
    rows = res['steps']
    tag = lambda r: f"{r['method']}/{r['backbone']}/{r['batch']}"
    return dict(data_10x=None if res['data'] is None else res['data']['speedup'] >= 10,
                steps_vs_lightly={tag(r): r['ours_vs_lightly'] >= 1 for r in rows},
                # SimCLR against the backbone's forward+backward; BYOL against that plus the target's forward
                steps_within_15pct={tag(r): r.get('ours_over_method_floor', r['ours_over_floor']) <= 0.15 for r in rows},
                # (e): the compiled model step's MFU against the device's bf16 peak (None: peak unknown, e.g. on a CPU)
                mfu_40pct={tag(r): None if r['mfu'] is None else r['mfu'] >= 0.4 for r in res.get('mfu', [])})

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
    if mfu_backbone not in SHAPES: raise ValueError(f"unknown --mfu_backbone {mfu_backbone!r}; choose from {list(SHAPES)}")
    do_mfu = mfu in ('on', 'only') or (mfu == 'auto' and dev.type == 'cuda')
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
    if mfu != 'only':
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

    res = dict(meta=meta, data=data, steps=steps, profile=profiles, mfu=mfu_res, datasets=prep)
    meta.update(loadavg_after=loadavg(), duration_s=time.perf_counter() - t_start, foreign_cores_mean=round(whole.stop(), 2),
                quiet_threshold_cores=QUIET)
    res['targets'] = targets(res)
    out = Path(out or HERE/f"results-{dev.type}{'-malloc' if malloc == 'tuned' else ''}{'-quick' if quick else ''}{'-mfu' if mfu == 'only' else ''}.json")
    out.write_text(json.dumps(res, indent=1))
    print('\n' + report(res))
    print(f"\nwrote {out}")
