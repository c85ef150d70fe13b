"""(b) and (c): one SSL training step of ours against lightly's and the backbone alone (the floor), and their peak memory."""
from __future__ import annotations
from bench_measure import QUIET, interleave, med, proc_mb, quiet_median, reset_peak, sync_device

SHAPES = {'cnn': ('us8k_audio', 'audio'), 'resnet18': ('us8k_png', 'image'),   # backbone -> (store layout, augment recipe)
          'resnet50': ('us8k_png', 'image')}   # the seed's model on its input: 3x128x128 mel pictures, its image transforms

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
        from urbanssl.recipes import make_augment
        from urbanssl.data import load_store
        from urbanssl.splits import fold_split
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
        sync_device(b.device)
        out[v] = dict(base_rss_mb=base['rss_mb'], **proc_mb(), peak_reset=ok)
        if cuda: out[v]['cuda_peak_mb'] = round(torch.cuda.max_memory_allocated(b.device) / 2**20, 1)
        del f
    return out

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
