"""A reproduction run on a taming VQGAN, end to end on a tiny random-weight checkpoint in the official format.

The paper preset explains taming's ImageNet VQGAN; its notebooks (cli.VQGAN_NOTEBOOKS) run here on a
checkpoint of the same format with random weights, small counts and one random-weight torchvision evaluator, so the
numbers mean nothing: what is checked is that the run uses the VQGAN it was given, end to end.
"""

import json, os
from pathlib import Path

import pandas as pd
import pytest
import torch
import torchvision

from cortex_nb.cli import reproduce, VQGAN_NOTEBOOKS
from cortex_nb.evaluators import torchvision_checkpoint_path
from cortex_nb.synthetic import vqgm_fingerprint
from cortex_nb.taming import write_tiny_taming_checkpoint, load_taming_vqgan

SAMPLING = {'top_k': 600, 'top_p': 0.92}  # taming's README sampler (-k 600 -p 0.92), not its default

# about 4.5 min on 2 cores (ResNet-18 on 224 px for the masking curves dominates)
pytestmark = pytest.mark.skipif(
    os.environ.get('CORTEX_NB_QUICK_TESTS') == '1', reason='CORTEX_NB_QUICK_TESTS=1'
)


@pytest.fixture(scope='module')
def vqgan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('vqgan')
    mp = pytest.MonkeyPatch()
    mp.setenv(
        'TORCH_HOME', str(root / 'torch')
    )  # the notebooks' kernels inherit it: the evaluator is read from there
    try:
        weights = torchvision_checkpoint_path('resnet18')
        weights.parent.mkdir(parents=True)
        torch.save(torchvision.models.resnet18().state_dict(), weights)
        cfg, ckpt = write_tiny_taming_checkpoint(root / 'vqgan')
        runs = reproduce(
            'tiny',
            out=root / 'out',
            cache_dir=root / 'cache',
            progress=False,
            extra_parameters={
                'vqgan_config': str(cfg),
                'vqgan_ckpt': str(ckpt),
                'evaluator_names': ['resnet18'],
                'vqgan_sampling': SAMPLING,  # every VQGAN notebook takes it, so all find the one store
                'preset_changes': {'n_train': 30, 'n_val': 8, 'n_test': 2},
                'random_seeds': 1,
                'n_edit_per_concept': 2,
            },
        )
    finally:
        mp.undo()
    return root, runs, load_taming_vqgan(cfg, ckpt).set_sampling(**SAMPLING)


def test_only_the_vqgan_notebooks_run(vqgan_run):
    root, runs, _ = vqgan_run
    assert [r.name for r in runs] == list(VQGAN_NOTEBOOKS) and all(r.status == 'ran' for r in runs)
    assert (
        not (root / 'out' / 'tokenizer_metrics.csv').exists()
        and not (root / 'out' / 'gt_localization.csv').exists()
    )


def test_the_store_is_sampled_from_the_given_vqgan(vqgan_run):
    root, _, vq = vqgan_run
    manifests = [
        json.loads(p.read_text()) for p in (root / 'cache' / 'synthetic').glob('*/store/manifest.json')
    ]
    assert [m['provenance']['vqgm'] for m in manifests] == [vqgm_fingerprint(vq)]
    assert [m['provenance']['vqgm_sampling'] for m in manifests] == [{'temperature': 1.0, **SAMPLING}]
    store = pd.read_csv(root / 'out' / 'vqgm_store.csv').iloc[0]
    assert (store.classes, store.grids, store.grid_size, store.codebook_size) == (10, 10 * 40, 8, 64)
    samples = pd.read_csv(
        root / 'out' / 'vqgm_samples.csv'
    )  # rows named by the VQGAN's own classes, not the evaluator's ImageNet names
    assert set(samples.concept) == {f'class_{i}' for i in range(10)} | {'all'}, set(samples.concept)


def test_iems_and_masking_tables_come_from_the_vqgan_store(vqgan_run):
    out = vqgan_run[0] / 'out'
    t1 = pd.read_csv(out / 'table1_iem_accuracy.csv')
    assert list(t1.iem) == ['ce', 're', 'te'] and (t1.n_classes == 10).all() and (t1.n_test == 20).all()
    fig4 = pd.read_csv(out / 'fig4_image_level_masking.csv')
    assert (
        set(fig4.iem) == {'ce', 're', 'te'}
        and set(fig4.evaluator) == {'resnet18'}
        and (fig4.n_images == 20).all()
    )
    t2 = pd.read_csv(out / 'table2_concept_level_masking.csv')
    assert set(t2.method) == {'ce', 're', 'te', 'frequency'}
    t5 = pd.read_csv(
        out / 'table5_codebook_editing_per_image.csv'
    )  # the test grids of the pairs (0, 1) … (8, 9), central box
    assert set(t5.mask_setting) == {'central'} and set(t5.iem) == {'ce', 're'} and len(t5) == 10 * 2 * 2 * 2
    assert (out / 'explorer_concept.png').exists() and (out / 'explorer_token.png').exists()
    report = (out / 'REPORT.md').read_text()
    assert 'Backbone: the taming VQGAN' in report and 'run on the concept world only' in report
    # no --min-dalle: the bias audit is said to be not run, not listed as missing claims
    assert 'Tables 3-4 (the bias audit of DALL-E mini) were not run' in report
    assert '| table3 |' not in report and '| table4 |' not in report and '| fig4 |' in report


def test_the_bias_audit_runs_on_dalle_mini(tmp_path):
    "--min-dalle: 05_bias_audit audits a min-dalle model (here a tiny random-weight one) on the paper's five prompts."
    from cortex_nb.text_to_image import write_tiny_min_dalle, PAPER_BIAS_PAIRS

    write_tiny_min_dalle(tmp_path / 'md')
    runs = reproduce(
        'tiny',
        out=tmp_path / 'out',
        cache_dir=tmp_path / 'cache',
        only=['05_bias_audit'],
        progress=False,
        extra_parameters={
            'min_dalle_dir': str(tmp_path / 'md'),
            'min_dalle_mega': False,
            'dalle_sampling': {'supercondition_factor': 10},  # DALL-E mini's own notebook's scale
            'n_example_images': 2,
            'audit_changes': {
                'n_train': 32,
                'n_val': 4,
                'n_test': 4,
                'n_neutral': 8,
                'n_resamples': 100,
                'n_set_resamples': 10,
            },
        },
    )
    assert [(r.name, r.status) for r in runs] == [('05_bias_audit', 'ran')]
    out = tmp_path / 'out'
    t3 = pd.read_csv(out / 'table3_bias_iem_accuracy.csv')
    assert list(t3.attribute_pair) == ['color', 'gender'] and list(t3.prompts) == [
        ' / '.join(p) for p in PAPER_BIAS_PAIRS.values()
    ]
    t4 = pd.read_csv(out / 'table4_bias_frequency.csv')
    assert (
        set(t4.attribute) == {p for pair in PAPER_BIAS_PAIRS.values() for p in pair}
        and (t4.n_images == 8).all()
    )
    assert (out / 'fig1_bias_examples_gender.png').exists() and not (out / 'bias_calibration.csv').exists()
    stores = [
        json.loads(p.read_text()) for p in (tmp_path / 'cache' / 'bias_store').glob('*/store/manifest.json')
    ]
    assert len(stores) == 2 and all(
        m['provenance']['vqgm_sampling']['supercondition_factor'] == 10.0 for m in stores
    ), stores
