"""The printed summary of a results dict, and which of the issue's targets it meets."""
from __future__ import annotations
from bench_measure import QUIET
from bench_mfu import N_FOLDS, SEED_EPOCHS, US8K_CLIPS
from bench_phases import phases_report

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
    if d is None: return '\n'.join(out + mfu_report(res) + phases_report(res) + ([f"\nTargets: MFU >= 40%: {res['targets']['mfu_40pct']}"] if res.get('mfu') else []))
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
    out += mfu_report(res) + phases_report(res)
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
