"""(a) Data throughput and its memory: our cached store and batched augmentation against the seed's per-file PNG pipeline."""
from __future__ import annotations
import gc, resource, tempfile, time
from bench_measure import Foreign, QUIET, proc_mb, quiet_median, sync_device

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
    from urbanssl.recipes import make_augment
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
                n += ours_epoch(store, aug, g, t['batch'], next(ep), device); sync_device(device)
                if time.perf_counter() - tt >= t['min_time']: return n / (time.perf_counter() - tt)
        def seed():
            tt = time.perf_counter(); n = seed_epoch(loader, device); sync_device(device)
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
    from urbanssl.recipes import make_augment
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
