"The house style holds: the sources are formatted by ruff, and the exported code passes ruff's lint rules."

import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'ruff', *args], cwd=ROOT, capture_output=True, text=True)


def test_sources_are_formatted():
    r = _ruff('format', '--check', '.')
    assert r.returncode == 0, f"ruff format --check . failed (run `ruff format`):\n{r.stdout}{r.stderr}"


def test_exported_code_passes_lint():
    r = _ruff('check', '.')
    assert r.returncode == 0, (
        f"ruff check . failed (fix the export cells in nbs/, then nbdev_export):\n{r.stdout}{r.stderr}"
    )


def _long_lines(path: Path, limit: int = 110) -> list[str]:
    "Lines of an exported module longer than `limit`, outside the `__all__` list nbdev writes."
    out, in_all = [], False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        in_all = in_all or line.startswith('__all__ = [')
        if not in_all and len(line) > limit:
            out.append(f"{path.name}:{n}: {len(line)} characters")
        in_all = in_all and not line.rstrip().endswith(']')
    return out


def test_exported_lines_fit():
    long = [
        x for p in sorted((ROOT / 'cortex_nb').glob('*.py')) if p.name != '_modidx.py' for x in _long_lines(p)
    ]
    assert not long, (
        "lines over 110 characters in the exported code (fix the notebooks' export cells):\n"
        + '\n'.join(long)
    )


def test_the_line_check_sees_long_lines(tmp_path):
    f = tmp_path / 'm.py'
    f.write_text("__all__ = ['a',\n    " + "'b', " * 30 + "]\nx = 1\ny = '" + 'z' * 120 + "'\n")
    assert _long_lines(f) == ['m.py:4: 126 characters']
