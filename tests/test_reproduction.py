"""The tiny-preset reproduction, run once, and the claims each component issue names, asserted from its CSVs.

A change that breaks a claim of the paper (as reproduced on the concept world) fails here.
"""
import os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope='session')
def out_dir(tmp_path_factory):
    "Run `cortex-nb reproduce --preset tiny` once (artifacts cached across runs) and return its out folder."
    out = Path(os.environ.get('CORTEX_NB_TEST_OUT', tmp_path_factory.mktemp('repro')/'tiny'))
    proc = subprocess.run([str(BIN/'cortex-nb'), 'reproduce', '--preset', 'tiny', '--out', str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"reproduction failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


def read(out_dir, name) -> pd.DataFrame:
    path = out_dir/name
    assert path.exists(), f"the reproduction wrote no {name}"
    return pd.read_csv(path)


def test_every_notebook_ran_and_kept_its_outputs(out_dir):
    for nb in sorted((ROOT/'paper_figures').glob('*.ipynb')):
        assert (out_dir/nb.name).exists(), f"no executed copy of {nb.name}"
    assert (out_dir/'fig_world_concepts.png').exists()


def test_second_run_skips_unchanged_notebooks(out_dir):
    proc = subprocess.run([str(BIN/'cortex-nb'), 'reproduce', '--preset', 'tiny', '--out', str(out_dir)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    assert lines and all(l.startswith('skipped') for l in lines), proc.stdout


from cortex_nb.report import CLAIM_CHECKS, collect_claims


@pytest.mark.parametrize('check', CLAIM_CHECKS, ids=[c.__name__ for c in CLAIM_CHECKS])
def test_paper_claims_hold_on_the_tiny_preset(out_dir, check):
    claims = collect_claims(out_dir, [check])
    assert len(claims), f"{check.__name__} checked nothing"
    failing = claims[~claims.holds]
    assert failing.empty, "claims that do not hold:\n" + failing.to_string(index=False)


def test_report_lists_every_table_and_claim(out_dir):
    text = (out_dir/'REPORT.md').read_text()
    claims = collect_claims(out_dir)
    for claim in claims.claim: assert claim in text
    assert '![fig_world_concepts](fig_world_concepts.png)' in text
