"""Notebooks explain; records record.

The markdown of the method notebooks (`nbs/`) and of the reproduction notebooks (`paper_figures/`) teaches
the method and says in a line what to expect. Dated measurements and per-machine run records belong in
`docs/findings.md` (or in commit messages). This test fails when a markdown cell holds a date or names a
CPU vendor or model family. Generic names of a bf16 path (AMX, AVX-512 BF16) describe the method and are
allowed; so are code cells (their comments included)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('paper_figures/*.ipynb')])

DATE = re.compile(r'\b\d{4}-\d{2}-\d{2}\b')
VENDOR = re.compile(r'\b(?:Intel|AMD|EPYC|Xeon|Ryzen|Threadripper|Graviton)\b|\bApple M\d*\b')


def prose_problems(text: str) -> list[str]:
    "What a markdown cell must not hold: dates and CPU vendor/model names, each as found."
    return [f'date {m.group(0)!r}' for m in DATE.finditer(text)] + [
        f'CPU vendor {m.group(0)!r}' for m in VENDOR.finditer(text)
    ]


def test_patterns():
    "The patterns catch what they should and leave the method's words alone."
    assert prose_problems('measured 2026-11-26 on Intel CPUs') == ["date '2026-11-26'", "CPU vendor 'Intel'"]
    assert prose_problems('an AMD EPYC, a Xeon, a Ryzen 9, Threadripper, Graviton3?') != []
    assert prose_problems('on an Apple M2') == ["CPU vendor 'Apple M2'"]
    assert prose_problems('a CPU with AMX or AVX-512 BF16 trains under bf16 autocast') == []
    assert prose_problems('version 2.4.14, shapes 2048 × 16384, seed 1234-5678') == []


def test_notebooks_found():
    assert any(p.parent.name == 'nbs' for p in NOTEBOOKS) and any(
        p.parent.name == 'paper_figures' for p in NOTEBOOKS
    )


@pytest.mark.parametrize('nb_path', NOTEBOOKS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_markdown_holds_no_run_records(nb_path):
    cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
    found = []
    for i, cell in enumerate(cells):
        if cell.get('cell_type') != 'markdown':
            continue
        src = cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])
        found += [f'{nb_path.relative_to(ROOT)}, markdown cell {i}: {p}' for p in prose_problems(src)]
    assert not found, (
        'Dated or per-machine run records in notebook prose; move them to docs/findings.md '
        '(the notebook keeps the method and a line on what to expect):\n  ' + '\n  '.join(found)
    )
