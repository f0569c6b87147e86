"""CORTEX end to end on today's VQGMs: a tiny random-weight aMUSEd (diffusers) and Janus (transformers).

Each model is built from config objects and written with its library's own `save_pretrained`, then loaded by the
adapter from that folder, as a user's real checkpoint would be. Every step of the method runs on it: the synthetic
dataset from concept prompts, IEM training (CE and RE), TIS and T*_concept, image- and concept-level masking with a
user's evaluator, a token selection, and the bias audit with the paper's prompts. On Janus a planted bias (prompt
words that push generation toward known ids) must be found, and its balanced twin must not be. The `hf` extra
(diffusers, transformers) is required: `make test` installs it, and without it these tests fail naming it.
"""

import subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

from cortex_nb.amused import load_amused, write_tiny_amused
from cortex_nb.bias_audit import BiasAuditConfig, audit_bias
from cortex_nb.codebook import check_vqgm
from cortex_nb.codebook_opt import CodebookOptConfig, TokenSelection, central_mask
from cortex_nb.core import ArtifactCache, scale_positions
from cortex_nb.iem_training import TrainConfig, get_iem_from_store
from cortex_nb.janus import load_janus, write_tiny_janus
from cortex_nb.masking_eval import concept_level_masking, image_level_masking
from cortex_nb.synthetic import build_synthetic_store
from cortex_nb.text_to_image import PAPER_BIAS_PAIRS, PAPER_NEUTRAL_PROMPT
from cortex_nb.tis import TokenImportance
from cortex_nb.token_sets import explain_concepts

WHITE, BLACK = PAPER_BIAS_PAIRS['color']
W_IDS, B_IDS = list(range(10)), list(range(10, 20))
PAPER_PROMPTS = [p for pair in PAPER_BIAS_PAIRS.values() for p in pair] + [PAPER_NEUTRAL_PROMPT]


@pytest.fixture(autouse=True)
def one_thread():
    "One torch thread: the tiny models' many small ops lose more to thread hand-offs than they gain (2 cores shared)."
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class MeanColourEvaluator:
    "The user's evaluator: softmax of a fixed random linear map of the mean colour (anything with predict_proba)."

    def __init__(self, n_classes, seed=0):
        self.w = torch.randn(3, n_classes, generator=torch.Generator().manual_seed(seed)) * 5

    def predict_proba(self, images):
        return (images.float().mean((2, 3)) @ self.w).softmax(1)


def run_method(vqgm, concepts, tmp, n=(24, 8, 8)):
    "Every step of CORTEX on `vqgm` for `concepts`; returns what each step produced."
    cache = ArtifactCache(tmp / 'cache')
    store = build_synthetic_store(vqgm, tmp / 'store', *n, concepts, batch_size=8, progress=False)
    out = {'store': store}
    for arch in ('ce', 're'):
        out[arch] = get_iem_from_store(
            arch,
            store,
            vqgm.codebook,
            'tiny',
            cache,
            progress=False,
            train_config=TrainConfig(epochs=20, batch_size=8),
        )
    iem = out['ce'][0]
    out['expl'] = explain_concepts(
        iem, store, vqgm.codebook, n=scale_positions(20, vqgm.grid_size), k=5, cache=cache, progress=False
    )
    ids = torch.from_numpy(store.ids('test').astype(np.int64))
    labels = torch.from_numpy(store.labels('test'))
    out['tis'] = TokenImportance(iem, n_samples=4).attribute(vqgm.embed(ids), labels)
    images = vqgm.decode(ids)
    evaluators = {'user': MeanColourEvaluator(len(concepts))}
    out['fig4'] = image_level_masking(
        out['tis'], images, labels, evaluators, counts=[4, 8], random_seeds=(0,)
    )
    out['table2'] = concept_level_masking(images, ids, labels, out['expl'], evaluators, method='ce')
    opt = TokenSelection(iem, vqgm, CodebookOptConfig(steps=20, lr=0.25, checkpoint_every=5))
    out['edit'] = opt.optimize(ids[:4], central_mask(vqgm.grid_size), 1 - labels[:4])
    out['ids'], out['labels'] = ids, labels
    return out


def check_method(out, vqgm, n_concepts):
    "What every run must give, whatever the weights."
    m, K = vqgm.grid_size, vqgm.codebook_size
    assert out['tis'].shape == (len(out['ids']), m, m) and torch.isfinite(out['tis']).all()
    for arch in ('ce', 're'):
        assert 0 <= out[arch][1]['metrics']['top1'] <= 1
    sets = out['expl'].sets()
    assert len(sets) == n_concepts and all(len(s) == 0 or int(s.max()) < K for s in sets)
    assert set(out['fig4'].selection) == {'tis', 'random'} and out['fig4'].prob.between(0, 1).all()
    assert out['table2'].masked_per_image.iloc[0] >= 0
    edit = out['edit']
    assert edit.images.shape == (4, 3, vqgm.image_size, vqgm.image_size)
    assert torch.equal(edit.edited[~edit.mask], edit.ids[~edit.mask])  # only the box changes


def audit(vqgm, pairs, tmp, n_neutral=40):
    return audit_bias(
        vqgm,
        pairs,
        PAPER_NEUTRAL_PROMPT,
        cache=tmp / 'audit-cache',
        progress=False,
        config=BiasAuditConfig(
            n_train=24,
            n_val=4,
            n_test=8,
            n_neutral=n_neutral,
            top_ns=(20,),
            n_resamples=300,
            n_set_resamples=20,
        ),
        train_config=TrainConfig(epochs=10, batch_size=8),
    )


def test_amused_end_to_end(tmp_path):
    t0 = time.time()
    folder = write_tiny_amused(tmp_path / 'amused')
    concepts = ['a photo of a cat', 'a photo of a dog']
    am = check_vqgm(load_amused(folder, concepts + PAPER_PROMPTS))
    assert (am.grid_size, am.image_size, tuple(am.codebook.shape)) == (8, 64, (256, 8))
    out = run_method(am, concepts, tmp_path)
    check_method(out, am, 2)
    res = audit(am, PAPER_BIAS_PAIRS, tmp_path, n_neutral=16)
    assert set(res.table3().attribute_pair) == {'color', 'gender'}
    assert res.neutral_ids.shape == (16, 8, 8) and int(res.neutral_ids.max()) < 256
    t4 = res.table4()
    assert (
        np.isfinite(t4[t4.favoured].cliffs_delta).all() and len(t4[t4.favoured]) == 2
    )  # δ on the favoured row
    assert time.time() - t0 < 180, f"{time.time() - t0:.0f} s"


def test_janus_end_to_end_finds_planted_tokens(tmp_path):
    "On a Janus whose prompt words push generation toward known ids, the method must point at those ids."
    t0 = time.time()
    plant = {'white': (W_IDS, 5.0), 'black': (B_IDS, 5.0), 'doctor': (W_IDS, 0.6)}
    folder = write_tiny_janus(tmp_path / 'janus', plant=plant)
    jn = check_vqgm(load_janus(folder, PAPER_PROMPTS))
    assert (jn.grid_size, jn.image_size, tuple(jn.codebook.shape)) == (8, 64, (256, 8))
    out = run_method(jn, [WHITE, BLACK], tmp_path)
    check_method(out, jn, 2)
    assert out['ce'][1]['metrics']['top1'] >= 0.9  # the planted ids separate the two prompts
    white, black = out['expl'].sets()
    assert len(set(white.tolist()) & set(W_IDS)) >= 4 and len(set(black.tolist()) & set(B_IDS)) >= 4
    res = audit(jn, {'color': (WHITE, BLACK)}, tmp_path)
    row = res.table4().set_index('attribute').loc[WHITE]
    assert row.cliffs_delta > 0.3 and row.ci_low > 0, row  # "doctor" leans white: found
    for reading in ('raw', 'generation'):  # the other two tables of the same ids: same grids, another E
        other = load_janus(folder, PAPER_PROMPTS, embedding=reading)
        assert other.codebook.shape == (256, 8) and not torch.equal(other.codebook, jn.codebook)
        store = build_synthetic_store(
            other, tmp_path / reading, 24, 8, 8, [WHITE, BLACK], batch_size=8, progress=False
        )
        assert np.array_equal(
            store.ids('train'), out['store'].ids('train')
        )  # the reading does not change the ids
        iem, meta = get_iem_from_store(
            'ce', store, other.codebook, 'tiny', tmp_path / 'cache', progress=False,
            train_config=TrainConfig(epochs=20, batch_size=8),
        )  # fmt: skip
        expl = explain_concepts(
            iem, store, other.codebook, n=5, k=5, cache=tmp_path / 'cache', progress=False
        )
        assert meta['metrics']['top1'] >= 0.9 and len(set(expl.sets()[0].tolist()) & set(W_IDS)) >= 4, reading
    assert time.time() - t0 < 180, f"{time.time() - t0:.0f} s"


def test_janus_balanced_plant_is_not_reported_as_bias(tmp_path):
    "The same plant without the neutral word's lean: the audit must not find a bias."
    folder = write_tiny_janus(tmp_path / 'janus', plant={'white': (W_IDS, 5.0), 'black': (B_IDS, 5.0)})
    jn = load_janus(folder, PAPER_PROMPTS)
    row = audit(jn, {'color': (WHITE, BLACK)}, tmp_path).table4().set_index('attribute').loc[WHITE]
    assert row.ci_low <= 0 <= row.ci_high and abs(row.cliffs_delta) < 0.3, row


def test_adapters_import_without_the_hf_extra_and_loaders_name_it(tmp_path):
    folder = write_tiny_amused(tmp_path / 'amused')
    code = (
        "import sys\n"
        "sys.modules['diffusers'] = None\n"
        "sys.modules['transformers'] = None\n"
        "import cortex_nb, cortex_nb.amused, cortex_nb.janus\n"
        f"cortex_nb.amused.load_amused({str(folder)!r})\n"
    )
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == 1 and "pip install 'cortex_nb[hf]'" in proc.stderr, proc.stderr
    assert 'the aMUSEd adapter' in proc.stderr


# `cortex-nb reproduce --backbone amused|janus --model-dir DIR`, as a user runs it
BIN = Path(sys.executable).parent
SMALL_RUN = [
    '-p',
    "preset_changes={'n_train': 32, 'n_val': 4, 'n_test': 4}",
    '-p',
    "audit_changes={'n_train': 32, 'n_val': 4, 'n_test': 4, 'n_neutral': 16, 'n_resamples': 100, "
    "'n_set_resamples': 10, 'top_ns': [20]}",
    '-p',
    'n_edit=2',
    '-p',
    "opt_changes={'steps': 20, 'checkpoint_every': 10}",
]


def cortex_nb(*args):
    return subprocess.run(
        [str(BIN / 'cortex-nb'), 'reproduce', *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope='module')
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('hf')
    (root / 'prompts.txt').write_text('# concepts\na photo of a cat\na photo of a dog\n')
    return {
        'amused': write_tiny_amused(root / 'amused'),
        'janus': write_tiny_janus(root / 'janus'),
        'prompts': root / 'prompts.txt',
    }


@pytest.mark.parametrize('backbone', ['amused', 'janus'])
def test_dry_run_refuses_a_wrong_folder_and_prints_the_plan(backbone, tiny_folders, tmp_path):
    other = tiny_folders['janus' if backbone == 'amused' else 'amused']
    for wrong in (tmp_path / 'nowhere', other):
        proc = cortex_nb(
            '--backbone', backbone, '--model-dir', wrong, '--prompts', tiny_folders['prompts'], '--dry-run'
        )
        assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr
        assert str(wrong) in proc.stderr and ('missing' in proc.stderr or 'no ' in proc.stderr), proc.stderr
    proc = cortex_nb('--backbone', backbone, '--model-dir', tiny_folders[backbone], '--dry-run')
    assert proc.returncode == 1 and 'at least two concept prompts' in proc.stderr, proc.stderr
    proc = cortex_nb(
        '--backbone',
        backbone,
        '--model-dir',
        tiny_folders[backbone],
        '--prompts',
        tiny_folders['prompts'],
        '--dry-run',
    )
    assert proc.returncode == 0, proc.stderr
    assert 'codebook K = 256, d = 8; 8×8 token grids of 64 px images' in proc.stdout, proc.stdout
    assert "concept prompts (2): 'a photo of a cat', 'a photo of a dog'" in proc.stdout
    assert '05_bias_audit: sample' in proc.stdout and 'left out' in proc.stdout


@pytest.mark.parametrize('backbone', ['amused', 'janus'])
def test_reproduce_runs_end_to_end_on_a_tiny_folder(backbone, tiny_folders, tmp_path):
    out = tmp_path / 'out'
    proc = cortex_nb(
        '--backbone',
        backbone,
        '--model-dir',
        tiny_folders[backbone],
        '--prompts',
        tiny_folders['prompts'],
        '--out',
        out,
        '--cache-dir',
        tmp_path / 'cache',
        *SMALL_RUN,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for f in (
        'table1_iem_accuracy.csv',
        'tstar_concept.csv',
        'token_selection.csv',
        'table4_bias_frequency.csv',
    ):
        assert (out / f).exists(), f
    report = (out / 'REPORT.md').read_text()
    assert f"Backbone: {'aMUSEd' if backbone == 'amused' else 'Janus-Pro'}" in report
    assert 'left out: the masking evaluations' in report
