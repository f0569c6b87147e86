"""The tiny-preset reproduction, run once, and the claims each component issue names, asserted from its CSVs.

A change that breaks a claim of the paper (as reproduced on the concept world) fails here.
"""
import os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# The tests run the whole tiny reproduction (23–34 min on 2 cores from an empty cache, Intel to AMD, under
# 2 min once the artifacts are cached) so that CI asserts the paper's claims. While iterating,
# CORTEX_NB_QUICK_TESTS=1 runs only the concept-world notebook through the same runner.
FULL = os.environ.get('CORTEX_NB_QUICK_TESTS') != '1'
ONLY = [] if FULL else ['00_world']
full_only = pytest.mark.skipif(not FULL, reason='CORTEX_NB_QUICK_TESTS=1: only the concept-world notebook was run')


@pytest.fixture(scope='session')
def out_dir(tmp_path_factory):
    "Run `cortex-nb reproduce --preset tiny` once (artifacts cached across runs) and return its out folder."
    out = Path(os.environ.get('CORTEX_NB_TEST_OUT', tmp_path_factory.mktemp('repro')/'tiny'))
    only = ['--only', *ONLY] if ONLY else []
    proc = subprocess.run([str(BIN/'cortex-nb'), 'reproduce', '--preset', 'tiny', '--out', str(out), *only],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"reproduction failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


def test_every_notebook_ran_and_kept_its_outputs(out_dir):
    from cortex_nb.cli import backbone_notebooks
    world_notebooks = backbone_notebooks(sorted((ROOT/'paper_figures').glob('*.ipynb')), 'world')
    assert '01_vqgan' not in [nb.stem for nb in world_notebooks]   # the VQGAN's own first step (tests/test_vqgan_run.py)
    for nb in world_notebooks:
        if ONLY and nb.stem not in ONLY: continue
        assert (out_dir/nb.name).exists(), f"no executed copy of {nb.name}"
    assert (out_dir/'fig_world_concepts.png').exists() and (out_dir/'fig_world_prompts.png').exists()


def test_second_run_skips_unchanged_notebooks(out_dir):
    only = ['--only', *ONLY] if ONLY else []
    proc = subprocess.run([str(BIN/'cortex-nb'), 'reproduce', '--preset', 'tiny', '--out', str(out_dir), *only],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    assert lines and all(l.startswith('skipped') for l in lines), proc.stdout


from cortex_nb.report import CLAIM_CHECKS, collect_claims

# Claims of components whose issue is still open: the reproduction runs them and REPORT.md
# shows whether they hold, but they are not yet asserted (see the closing notes in the tracker).
NOT_YET_ASSERTED = {
    'claims_fig4': 'issue 5: at n = 1 of 64 CE\'s top-TIS masking ties random (-0.001 / -0.005); RE is at random at every n (its gradient TIS sits on the stride-4 lattice of its strided 1x1 shortcuts, nbs/14_ground_truth); of seeds 0-3 only seed 3 holds for CE',
    'claims_table2': 'issue 5: RE under the CNN lowers accuracy less than the frequency baseline (-0.024 vs -0.048); RE\'s T*_image comes from the lattice above',
    'claims_ground_truth': 'issue 5: SmoothGrad top-1 inside the object x2.29 (CE) / x1.02 (RE, 48 % of its top-1s on the corner cell) of random, < 2.5 (CE over seeds 0-3: x2.29, 2.18, 2.13, 3.19; the authors\' logit/signed TIS, reported beside it: x2.74, 2.67, 2.57, 2.62); and the untrained IEM points at the object more often in every seed (CE untrained x2.57, 3.15, 3.41, 3.47)',
    'claims_bias': 'issue 7: planted 80/20 bias found only up to delta +0.31 (< 0.33; colour holds in seeds 1 and 3 of 0-3); colour |delta| > 0.147 at 50/50 at top-5 (prompt mixture +0.21, fine-tuned +0.30); the colour fine-tuned calibration does not rise with the share (+0.30, +0.46, +0.37, +0.54)',
}
# The asserted claims are checked at the preset's seed. They are draws too: of the replicates with
# --seed 1, 2, 3, seed 2 misses the decoded-sample claim (72.4 / 73.7 % < 75 %) and Table 3's texture
# IEM (94.8 % < 95 %); `cortex-nb replicates` shows the spread.


def _claim_param(check):
    reason = NOT_YET_ASSERTED.get(check.__name__)
    marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
    return pytest.param(check, id=check.__name__, marks=marks)


@full_only
@pytest.mark.parametrize('check', [_claim_param(c) for c in CLAIM_CHECKS])
def test_paper_claims_hold_on_the_tiny_preset(out_dir, check):
    claims = collect_claims(out_dir, [check])
    assert len(claims), f"{check.__name__} checked nothing"
    claims = claims[~claims.timed]   # wall-clock claims are reported in REPORT.md, not asserted
    failing = claims[~claims.holds]
    assert failing.empty, "claims that do not hold:\n" + failing.to_string(index=False)


@full_only
def test_report_lists_every_table_and_claim(out_dir):
    text = (out_dir/'REPORT.md').read_text()
    claims = collect_claims(out_dir)
    for claim in claims.claim: assert claim.replace('|', r'\|') in text   # markdown-escaped, as in |δ|
    assert '![fig_world_concepts](fig_world_concepts.png)' in text


def test_report_is_written_and_marks_missing_tables_as_not_holding(out_dir):
    text = (out_dir/'REPORT.md').read_text()
    assert '![fig_world_concepts](fig_world_concepts.png)' in text
    if not FULL: assert '❌ does not hold' in text and 'missing' in text
