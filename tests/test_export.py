"The generated library, the README and the notebooks are what the notebooks say they are."

import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_library_is_what_nbdev_export_makes_of_the_notebooks(tmp_path):
    for name in ('settings.ini', 'setup.py', 'README.md'):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')
    subprocess.run([str(BIN / 'nbdev_export')], cwd=tmp_path, check=True, capture_output=True)
    made = {p.name: p.read_text() for p in (tmp_path / 'cortex_nb').glob('*.py')}
    have = {p.name: p.read_text() for p in (ROOT / 'cortex_nb').glob('*.py')}
    assert sorted(made) == sorted(have), (
        "cortex_nb/ has different files than nbdev_export makes: run nbdev_export"
    )
    stale = [n for n in made if made[n] != have[n]]
    assert not stale, (
        f"cortex_nb/{stale} differ from the notebooks: run nbdev_export (never edit cortex_nb/ by hand)"
    )


def test_notebooks_are_committed_clean():
    dirty = []
    for nb_path in sorted((ROOT / 'nbs').glob('*.ipynb')) + sorted((ROOT / 'paper_figures').glob('*.ipynb')):
        nb = json.loads(nb_path.read_text())
        for cell in nb['cells']:
            if cell['cell_type'] == 'code' and (cell.get('outputs') or cell.get('execution_count')):
                dirty.append(nb_path.name)
                break
    assert not dirty, f"notebooks with outputs or execution counts: {dirty} (run nbdev_clean)"


def test_readme_is_the_rendered_index_notebook(tmp_path):
    out = subprocess.run(
        [
            str(BIN / 'jupyter'),
            'nbconvert',
            '--to',
            'markdown',
            '--stdout',
            str(ROOT / 'nbs' / 'index.ipynb'),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert (ROOT / 'README.md').read_text().strip() == out.strip(), "README.md is stale: make readme"
