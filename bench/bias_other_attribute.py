"""Is Table 4's weak δ caused by the attribute prompts' mix of the *other* attribute?

In the concept world an attribute prompt fixes its own attribute and flips a fair coin for the other one
(`doctor:light` is striped half the time), while the neutral prompt plants both (80 % light *and* 80 % striped
at the default share). Stripes change which codes a body gets, so T*_concept of `light`, learned on half-striped
images, might miss the mostly striped light doctors of the neutral prompt. This study re-derives each attribute's
T*_concept from a subsample of its TIS picks in which the other attribute, as its binary IEM reads it, has the
neutral images' mix, and recounts the same neutral images. Nothing is retrained: it reads the reproduction's cache.

Per pair and top-n it prints the two sets' mean counts per neutral image and Cliff's δ, as audited and re-derived.

Then, per guidance scale (--guidance), where the sets' ids go missing: the favoured set's ids per image among the
grids the pair's IEM reads as favoured, split by the other attribute's reading, under the favoured prompt and under
the neutral prompt (fresh samples, --n per prompt and scale, the smallest top-n).

usage: python bench/bias_other_attribute.py [--preset tiny] [--threads 2] [--guidance 5 3 1] [--n 600]
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from cortex_nb.bias_audit import (
    run_bias_audit,
    attribute_store,
    binary_iem,
    explain_attribute,
    token_set_from_picks,
    count_set_tokens,
    vqgm_fingerprint,
    reads_favoured,
)
from cortex_nb.bias_stats import cliffs_delta
from cortex_nb.core import ArtifactCache, default_cache_dir


def subsample_to_share(is_favoured: np.ndarray, share: float, rng) -> np.ndarray:
    "Indices of the largest subsample in which a fraction `share` (strictly between 0 and 1) is favoured."
    if not 0 < share < 1:
        raise ValueError(f"the neutral images read {share:.0%} favoured: no mix to match")
    a, b = np.nonzero(is_favoured)[0], np.nonzero(~is_favoured)[0]
    m = int(min(len(a) / share, len(b) / (1 - share)))
    n_a = int(round(m * share))
    return np.concatenate([rng.choice(a, n_a, replace=False), rng.choice(b, m - n_a, replace=False)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='tiny')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--guidance', type=float, nargs='*', default=[5.0, 3.0, 1.0])
    ap.add_argument('--n', type=int, default=600)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cache = ArtifactCache(default_cache_dir())
    vqgm, res, _ = run_bias_audit(a.preset, cache, progress=False)
    cfg, K, codebook, neutral = res.config, len(vqgm.codebook), vqgm.codebook, res.neutral_ids
    neutral_share = {
        p: float(reads_favoured(res.iems[p], neutral, codebook).float().mean()) for p in res.pairs
    }
    print('neutral images read as favoured: ' + ', '.join(f'{p} {s:.0%}' for p, s in neutral_share.items()))
    rng, key = np.random.default_rng(0), vqgm_fingerprint(vqgm)
    for pair, prompts in res.pairs.items():
        other = next(p for p in res.pairs if p != pair)
        store = attribute_store(vqgm, prompts, cfg, cache, key, False)
        iem, meta = binary_iem(vqgm, store, a.preset, cache, cfg, False)
        # the audit's picks come from these grids, in this order
        grids = [
            explain_attribute(
                iem, store, codebook, label, a.preset, cache, cfg, Path(meta['folder']).name, False
            )[0]
            for label in range(2)
        ]
        keep = [
            subsample_to_share(
                reads_favoured(res.iems[other], ids.long(), codebook).numpy(), neutral_share[other], rng
            )
            for ids in grids
        ]
        for n in res.positions:
            picks = [res.picks[(pair, prompt, n)] for prompt in prompts]
            for variant, chosen in (
                ('as audited', picks),
                (f'{other} at the neutral mix', [p[torch.from_numpy(k)] for p, k in zip(picks, keep)]),
            ):
                x, y = (count_set_tokens(neutral, token_set_from_picks(p, cfg.k, K)) for p in chosen)
                print(
                    f"{pair:8s} top-{n:<2d} {variant:30s} counts {x.mean():.2f} vs {y.mean():.2f}  δ {cliffs_delta(x, y):+.3f}  "
                    f"({min(len(p) for p in chosen)}+ images per set)"
                )
    n = min(res.positions)
    for scale in a.guidance:
        for pair, (fav, _) in res.pairs.items():
            other = next(p for p in res.pairs if p != pair)
            for prompt in (fav, res.neutral_prompt):
                ids = vqgm.sample([prompt], a.n, seed=77, guidance_scale=scale).cpu().long()
                is_fav, other_fav = (
                    reads_favoured(res.iems[p], ids, codebook).numpy() for p in (pair, other)
                )
                count = count_set_tokens(ids, res.token_sets[(pair, fav, n)])
                split = ', '.join(
                    f"{other} {'favoured' if o else 'other'} {count[is_fav & (other_fav == o)].mean():.2f} "
                    f"(n = {int((is_fav & (other_fav == o)).sum())})"
                    for o in (True, False)
                )
                print(
                    f"guidance {scale:g}  {prompt:14s} read {fav}: {is_fav.mean():.0%}; {fav}-set ids per such grid: {split}"
                )


if __name__ == '__main__':
    main()
