"""The world VQGM's training code, run from scratch at a small size, still makes a VQGM worth explaining.

The reproduction loads the shipped release (`07a_world_release`); this test keeps the code that made it
honest: a shortened tokenizer, predictor and evaluators, trained here, written as a release and loaded back,
must clear quality bars set for their size, and the release's own evaluators must recognise its samples.
"""

import numpy as np
import torch
import pytest

from cortex_nb.core import ArtifactCache, get_preset, set_torch_threads, verify_manifest
from cortex_nb.evaluators import get_evaluators, score_images
from cortex_nb.predictor import PredictorConfig
from cortex_nb.tokenizer import (
    TokenizerConfig,
    evaluate_tokenizer,
    heldout_images,
    load_tokenizer,
    world_for_preset,
)
from cortex_nb.world_release import train_world_vqgm

# About a quarter of the release's schedule (tokenizer 1600 steps, predictor 4800, evaluators 1500-2000)
SMALL = dict(
    tcfg=dict(steps=400), pcfg=dict(steps=1200, images_per_condition=1000), evaluator_changes={'steps': 400}
)
# Measured at this size (2 AMD cores): 20.3 dB, the weaker evaluator (the ViT, 400 steps) 49 %, samples 29 %.
# An untrained tokenizer reconstructs at about 11 dB, and untrained evaluators or predictors score chance, 10 %.
BARS = {'psnr_db': 19.5, 'own_evaluator_accuracy': 0.40, 'sample_accuracy': 0.20}


@pytest.fixture(scope='module')
def small_release(tmp_path_factory):
    d = tmp_path_factory.mktemp('world_vqgm')
    P = get_preset('tiny', world_vqgm='retrain')
    set_torch_threads(P)
    rel = train_world_vqgm(
        P,
        ArtifactCache(d / 'cache'),
        d / 'release',
        tcfg=TokenizerConfig.for_preset(P, **SMALL['tcfg']),
        pcfg=PredictorConfig.for_preset(P, **SMALL['pcfg']),
        evaluator_changes=SMALL['evaluator_changes'],
    )
    return P, rel, d


def test_release_is_complete_and_verifies(small_release):
    P, rel, _ = small_release
    manifest = verify_manifest(rel)
    assert manifest['preset']['world_seed'] == P.world_seed
    for name in (
        'tokenizer/history.json',
        'predictor/history.json',
        'evaluators/cnn/evaluator.json',
        'release.json',
    ):
        assert name in manifest['files']


def test_small_world_vqgm_clears_its_bars(small_release, monkeypatch):
    P, rel, d = small_release
    monkeypatch.setenv('CORTEX_NB_RELEASES', str(rel.parent))
    rel.rename(rel.parent / 'world-vqgm-tiny')
    try:
        from cortex_nb.predictor import build_world_vqgm

        world = world_for_preset(P)
        released = P.replace(world_vqgm='release')
        vqgm = build_world_vqgm(released)
        tok = load_tokenizer(rel.parent / 'world-vqgm-tiny' / 'tokenizer')
        psnr = evaluate_tokenizer(tok, heldout_images(world, tok.cfg))['psnr_db']
        evaluators = get_evaluators(released)
        batch = world.sample(50, seed=54321)
        own = score_images(
            evaluators, torch.from_numpy(batch.images).float(), batch.labels, per_concept=False
        )
        concepts = [vqgm.conditions.index(c) for c in vqgm.concepts]
        with torch.no_grad():
            images = vqgm.decode(vqgm.sample(concepts, n=30, seed=1))
        samples = score_images(evaluators, images, np.repeat(np.arange(len(concepts)), 30), per_concept=False)
    finally:
        (rel.parent / 'world-vqgm-tiny').rename(rel)
    measured = {
        'psnr_db': psnr,
        'own_evaluator_accuracy': own.accuracy.min(),
        'sample_accuracy': samples.accuracy.min(),
    }
    below = {k: v for k, v in measured.items() if v < BARS[k]}
    assert not below, f"below the bars {BARS}: {below} (all measured: {measured})"
