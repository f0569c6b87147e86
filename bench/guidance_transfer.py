"""Does an IEM trained on guided samples recognise, and localize on, the world's own images?

The ground-truth test (`14_ground_truth`, `paper_figures/03_sample_level`) explains rendered world images
tokenized by the VQGM's encoder, because only they have object and part masks, while the IEMs are trained on
the predictor's samples, as in the paper. The tiny preset samples with classifier-free guidance (scale 5),
which pushes every grid towards what tells its condition from the others. This study trains the same IEMs
on stores sampled at other guidance scales (same counts, seeds and predictor) and reports, per scale:

- evaluator accuracy on the decoded samples (the CNN evaluator: do the samples show their concept?);
- IEM accuracy on its own test split, and on the tokenized world images of the ground-truth test,
  with the share whose shape (the concept minus its part) is right;
- SmoothGrad-TIS pointing ratio (top-1 inside the mask / random) for the object and the part mask.

Everything is cached (`CORTEX_NB_CACHE`), so the preset's own scale costs nothing after a reproduction;
each other scale costs one store (about 25 s on two cores) and one training per IEM (CE about 20 s).

usage: python bench/guidance_transfer.py [--scales 5 3 2 1] [--iems ce re] [--preset tiny] [--threads 2]
"""

import argparse

import torch

from cortex_nb.core import ArtifactCache, get_preset
from cortex_nb.codebook import embed_tokens
from cortex_nb.evaluators import get_evaluators
from cortex_nb.ground_truth import world_grids, cell_coverage, inside_cells, localization_scores
from cortex_nb.iem_training import get_iem_from_store
from cortex_nb.predictor import build_world_vqgm
from cortex_nb.synthetic import SyntheticConfig, get_synthetic_store, store_images
from cortex_nb.tis import TokenImportance
from cortex_nb.tokenizer import world_for_preset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scales', type=float, nargs='+', default=[5.0, 3.0, 2.0, 1.0])
    ap.add_argument('--iems', nargs='+', default=['ce', 're'])
    ap.add_argument('--preset', default='tiny')
    ap.add_argument(
        '--n-per-concept', type=int, default=30, help='world images per concept (the reproduction uses 30)'
    )
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    P, cache = get_preset(a.preset), ArtifactCache(None)
    world, evaluator = world_for_preset(P), get_evaluators(P, cache=cache)['cnn']
    vqgm = build_world_vqgm(
        P, cache, progress=False
    )  # one tokenizer and predictor; only the sampling differs by scale
    gt = world_grids(vqgm, world, a.n_per_concept)
    E_world, m = embed_tokens(gt['ids'], vqgm.codebook.float()), gt['ids'].shape[-1]
    masks = {k: inside_cells(cell_coverage(gt[f'{k}_mask'], m)) for k in ('object', 'part')}
    shapes = [c.split('-')[0] for c in world.concepts]  # 'disk-horn' → 'disk': the concept without its part
    shape = lambda labels: [shapes[int(c)] for c in labels]
    print(
        '| guidance | samples: CNN acc | IEM | IEM acc, own test | IEM acc, world images | shape right | object ×random | part ×random |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for g in a.scales:
        _, store = get_synthetic_store(
            P, cache=cache, cfg=SyntheticConfig.for_preset(P, guidance_scale=g), progress=False
        )
        test_labels = torch.as_tensor(store.labels('test'))
        with torch.no_grad():
            sample_acc = (
                (evaluator.predict(store_images(vqgm, store, 'test', range(len(test_labels)))) == test_labels)
                .float()
                .mean()
            )
        E_test = embed_tokens(torch.as_tensor(store.ids('test')), vqgm.codebook.float())
        for arch in a.iems:
            model, _ = get_iem_from_store(arch, store, vqgm.codebook, P, cache=cache, progress=False)
            with torch.no_grad():
                own, pred = (model(E_test).argmax(1) == test_labels).float().mean(), model(E_world).argmax(1)
            tis = TokenImportance.for_preset(model, P).attribute(E_world, gt['labels'])
            ratio = {k: localization_scores(tis, inside, 1)['ratio'] for k, inside in masks.items()}
            print(
                f"| {g:g} | {sample_acc:.1%} | {arch.upper()} | {own:.1%} | {(pred == gt['labels']).float().mean():.1%} | "
                f"{sum(p == t for p, t in zip(shape(pred), shape(gt['labels']))) / len(pred):.1%} | ×{ratio['object']:.2f} | ×{ratio['part']:.2f} |",
                flush=True,
            )


if __name__ == '__main__':
    main()
