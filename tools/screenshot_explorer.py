"""Retake the screenshot of the live `Explorer` in JupyterLab shown on the explore page (nbs/17_explore.ipynb).

Needs the `docs` extra (`pip install -e ".[docs]"`: JupyterLab, Playwright's Python package) and a Chromium binary
(Debian: `apt-get install chromium`); Playwright's own browser downloads are not used. Run from the repository root:

    python tools/screenshot_explorer.py

It starts JupyterLab on 127.0.0.1 only, in a temporary folder with its own Jupyter config, data and runtime folders,
writes a small notebook there that trains two tiny seeded runs and shows `Explorer`, runs it in headless Chromium,
ticks "wrong only", waits until the new spectrogram has loaded, and saves a screenshot of that notebook cell.
"""
from __future__ import annotations
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
from fastcore.script import call_parse

CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']

BUILD = """\
from pathlib import Path
from urbanssl.synth import make_synthetic
from urbanssl.cv import run_cv
from urbanssl.explore import Explorer
tiny = dict(backbone='cnn', epochs=1, batch_size=16, hidden_dim=64, out_dim=32, probe='fixed', probe_epochs=10,
            folds='1-3', seed=0, workers=1, cache_dir='cache', progress=False, verbose=False)
run_cv(make_synthetic(Path('synth'), n_per_class=2, n_folds=3, progress=False), 'simclr', out='runs/simclr', **tiny)
png = run_cv(make_synthetic(Path('synth-png'), n_per_class=1, n_folds=3, layout='us8k_png', progress=False),
             'simclr', out='runs/simclr-png', **tiny)"""

SHOW = "Explorer(['runs/simclr', 'runs/simclr-png'], cache_dir='cache')"

def demo_notebook() -> dict:
    "The notebook the screenshot is taken from: build the tiny runs, then show the explorer."
    cell = lambda s: dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=s)
    return dict(nbformat=4, nbformat_minor=5, cells=[cell(BUILD), cell(SHOW)],
                metadata=dict(kernelspec=dict(name='python3', display_name='Python 3 (ipykernel)', language='python')))

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def wait_for_server(url: str, proc: subprocess.Popen, timeout: float):
    "Poll `url` until JupyterLab answers; fail early if the server process died."
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5): return
        except OSError: time.sleep(1)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")

def start_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    "JupyterLab on 127.0.0.1:`port` serving `root/'lab'`, with settings that keep news and update checks off."
    settings = root/'.lab-settings'/'@jupyterlab'/'apputils-extension'
    settings.mkdir(parents=True)
    (settings/'notification.jupyterlab-settings').write_text(json.dumps(dict(fetchNews='false', checkForUpdates=False)))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root/'.jupyter-config'), JUPYTER_DATA_DIR=str(root/'.jupyter-data'),
               JUPYTER_RUNTIME_DIR=str(root/'.jupyter-runtime'), JUPYTER_PLATFORM_DIRS='1')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root/"lab"}', '--expose-app-in-browser',
           f'--LabApp.user_settings_dir={root/".lab-settings"}', f'--LabApp.workspaces_dir={root/".lab-workspaces"}',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.extension_manager=readonly']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')   # e.g. in a container
    return subprocess.Popen(cmd, cwd=root/'lab', env=env, stdout=open(root/'lab.log', 'w'), stderr=subprocess.STDOUT)

def stop_lab(proc: subprocess.Popen, base: str, token: str):
    "Shut the server (and its kernel) down through its API; terminate it if it does not stop."
    try: urllib.request.urlopen(urllib.request.Request(f'{base}/api/shutdown?token={token}', method='POST'), timeout=10)
    except OSError: pass
    try: proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()

KERNEL_IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k && k.status === 'idle'; }"""
LOADED = "img => img && img.complete && img.naturalWidth > 0"
COUNT = re.compile(r'^\d+ of \d+ predictions$')

def say(msg: str): print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

def shoot(base: str, token: str, profile: Path, out: Path, chromium: str, timeout: float):
    "Open the notebook in headless Chromium, run it, tick 'wrong only', and screenshot the explorer's cell."
    from playwright.sync_api import sync_playwright
    ms = timeout * 1000
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=chromium, headless=True,
                                                    args=CHROMIUM_FLAGS, viewport=dict(width=1280, height=1600))
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        try:
            page.goto(f'{base}/lab/tree/explorer.ipynb?token={token}')
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')", timeout=ms)
            page.wait_for_function(KERNEL_IDLE, timeout=ms)
            say("notebook open, kernel idle; running all cells (trains the tiny runs)")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            done = page.wait_for_selector('img.widget-image, .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                                          timeout=ms)
            if 'widget-image' not in (done.get_attribute('class') or ''):
                raise RuntimeError(f"the notebook failed:\n{done.inner_text()}")
            page.wait_for_function(f"() => ({LOADED})(document.querySelector('img.widget-image'))", timeout=ms)
            counter = page.get_by_text(COUNT)
            count = counter.inner_text()
            say(f"explorer shown ({count}); ticking 'wrong only'")
            page.get_by_label('wrong only').check()
            page.get_by_text(COUNT).filter(has_not_text=count).wait_for(timeout=ms)
            page.wait_for_timeout(1000)    # the new figure's bytes arrive with the count; let the image decode
            page.wait_for_function(f"() => ({LOADED})(document.querySelector('img.widget-image'))", timeout=ms)
            cell = page.locator('.jp-Cell', has=page.locator('img.widget-image'))
            cell.scroll_into_view_if_needed()
            page.mouse.click(5, 5)          # move focus off the checkbox, so no focus ring is drawn
            page.wait_for_timeout(500)
            out.parent.mkdir(parents=True, exist_ok=True)
            cell.screenshot(path=str(out))
            say(f"{counter.inner_text()} (was {count}); saved {out}")
        except Exception:
            page.screenshot(path=str(profile.parent/'failure.png')); raise
        finally: ctx.close()

@call_parse
def main(out: str='nbs/images/explorer.png', # where the PNG goes
         chromium: str='/usr/bin/chromium', # the Chromium (or Chrome) binary
         timeout: float=900, # seconds allowed for each wait (starting JupyterLab, training the tiny runs, rendering)
         keep: bool=False, # keep the temporary folder (notebook, runs, lab.log) and print where it is
        ):
    "Screenshot the live explorer in JupyterLab (headless Chromium) for the explore page."
    if not Path(chromium).exists(): raise SystemExit(f"{chromium}: no such browser (Debian: apt-get install chromium)")
    root = Path(tempfile.mkdtemp(prefix='explorer-shot-'))
    (root/'lab').mkdir(); (root/'lab'/'explorer.ipynb').write_text(json.dumps(demo_notebook(), indent=1))
    port, token = free_port(), secrets.token_hex(16)
    base = f'http://127.0.0.1:{port}'
    proc = start_lab(root, port, token)
    try:
        wait_for_server(f'{base}/api/status?token={token}', proc, timeout)
        say(f"JupyterLab answers at {base}")
        shoot(base, token, root/'chromium-profile', Path(out).resolve(), chromium, timeout)
    except Exception:
        print(f"JupyterLab's log: {root/'lab.log'}; the page when it failed: {root/'failure.png'}", file=sys.stderr); keep = True; raise
    finally:
        stop_lab(proc, base, token)
        if keep: print(f"kept {root}")
        else: shutil.rmtree(root, ignore_errors=True)
