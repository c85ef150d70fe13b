"""Write README.md from the markdown cells and the shown code cells of nbs/index.ipynb (nbdev_readme needs Quarto, which we cannot install).

`python .ci/sync_readme.py` rewrites README.md; `--check` exits 1 when README.md is out of date."""
import json, posixpath, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
nb = json.loads((root/'nbs'/'index.ipynb').read_text(encoding='utf-8'))
def from_root(src):
    "Markdown links relative to nbs/ (as the site needs them) made relative to the repository root, for README.md on GitHub."
    fix = lambda m: f"]({posixpath.normpath('nbs/' + m[1])}{m[2] or ''})"
    return re.sub(r'\]\((?![a-z][a-z0-9+.-]*:|/|#)([^)\s#]+)(#[^)\s]*)?\)', fix, src)
def part(c):
    "A markdown cell with its links fixed; a code cell shown on the page (no `#| hide`) as a fenced Python block."
    src = ''.join(c['source']).strip()
    if c['cell_type'] == 'markdown': return from_root(src)
    if '#| hide' in src: return ''
    return '```python\n' + '\n'.join(l for l in src.splitlines() if not l.startswith('#|')) + '\n```'
parts = [part(c) for c in nb['cells']]
text = '\n\n'.join(p for p in parts if p) + '\n'
readme = root/'README.md'
if '--check' in sys.argv:
    if not readme.exists() or readme.read_text(encoding='utf-8') != text:
        sys.exit(f'{readme} is out of date with nbs/index.ipynb: run `python .ci/sync_readme.py`')
else:
    readme.write_text(text, encoding='utf-8')
    print(f'wrote {readme}')
