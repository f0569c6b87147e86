"""Throughput of the batched TIS (one backward per chunk of images × noise samples) vs the authors' per-image loop.

Paper-size CE (d=256, m=16, 1000 concepts, random weights), eval mode, the same noise for both.
The loop (one forward of the batch per noise sample, then one autograd.grad per image with
create_graph=True, as in the authors' code) is timed on --loop-samples noise samples and scaled to
--samples: both costs are linear in the number of noise samples.

usage: python bench/tis.py [--batch 25] [--samples 20] [--loop-samples 1] [--threads 2] [--max-batch 100]
"""
import argparse, time

import torch

from cortex_nb.iem import build_iem
from cortex_nb.tis import TokenImportance, smoothgrad_loop, image_noise


def _timed(fn, repeats=1):
    best, out = float('inf'), None
    for _ in range(repeats):
        t = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t)
    return best, out


def topn_agreement(a: torch.Tensor, b: torch.Tensor, n: int) -> float:
    "Mean fraction of the top-n positions of TIS map a that are also top-n in b."
    ta, tb = a.flatten(1).topk(n, 1).indices, b.flatten(1).topk(n, 1).indices
    return float(torch.stack([torch.isin(x, y).float().mean() for x, y in zip(ta, tb)]).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=25)
    ap.add_argument('--samples', type=int, default=20, help='N noise samples of SmoothGrad')
    ap.add_argument('--loop-samples', type=int, default=1, help='noise samples the loop is timed on (scaled to --samples)')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--max-batch', type=int, default=100, help='rows (image x noise sample) per backward of the batched path')
    ap.add_argument('--grid', type=int, default=16); ap.add_argument('--embed-dim', type=int, default=256)
    ap.add_argument('--classes', type=int, default=1000); ap.add_argument('--codebook-size', type=int, default=16384)
    ap.add_argument('--top-n', type=int, default=20)
    ap.add_argument('--no-bf16', action='store_true', help='skip the bfloat16 autocast variant')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    model = build_iem('ce', 'paper', a.classes, in_channels=a.embed_dim, grid_size=a.grid).eval()
    codebook = torch.randn(a.codebook_size, a.embed_dim)
    ids = torch.randint(0, a.codebook_size, (a.batch, a.grid, a.grid))
    E = codebook[ids].movedim(-1, 1).contiguous()
    y = torch.randint(0, a.classes, (a.batch,))
    noise = torch.stack([image_noise(E.shape[1:], 0, i, a.samples) for i in range(a.batch)])
    L = min(a.loop_samples, a.samples)
    print(f"CE d={a.embed_dim} m={a.grid} n={a.classes}, batch {a.batch}, N={a.samples}, {a.threads} thread(s), max_batch {a.max_batch}")

    t_loop, S_loop = _timed(lambda: smoothgrad_loop(model, E, y, noise[:, :L], create_graph=True))
    t_loop_full = t_loop * a.samples / L
    print(f"loop   (authors' scheme): {t_loop:.2f} s for {L} noise sample(s) -> {t_loop_full:.1f} s for N={a.samples} "
          f"(scaled, linear in N): {a.batch / t_loop_full:.3f} images/s")

    results = {}
    variants = [('batched fp32', {}), ('batched fp32 channels-last', {'channels_last': True})]
    if not a.no_bf16: variants.append(('batched bf16 autocast channels-last', {'channels_last': True, 'autocast_dtype': torch.bfloat16}))
    ref_tis = None
    for name, kw in variants:
        ti = TokenImportance(model, n_samples=a.samples, max_batch=a.max_batch, **kw)
        t, (tis, S) = _timed(lambda: ti.attribute(E, y, noise=noise, return_saliency=True))
        ips = a.batch / t
        # equality with the loop on the same noise samples the loop used
        S_sub = TokenImportance(model, n_samples=L, max_batch=a.max_batch, **kw).saliency(E, y, noise=noise[:, :L])
        diff = (S_sub - S_loop).abs().max().item(); rel = diff / S_loop.abs().max().item()
        line = (f"{name:36s}: {t:.1f} s -> {ips:.3f} images/s, {t_loop_full / t:.1f}x the loop; "
                f"max |S - S_loop| = {diff:.3g} (relative to max|S_loop|: {rel:.3g})")
        if ref_tis is None: ref_tis = tis
        else: line += f"; top-{a.top_n} agreement with fp32: {topn_agreement(tis, ref_tis, a.top_n):.3f}"
        print(line); results[name] = t_loop_full / t
    best = max(results, key=results.get)
    fp32 = {k: v for k, v in results.items() if 'bf16' not in k}
    print(f"RATIO fp32 (best layout) batched/loop throughput: {max(fp32.values()):.1f}x; best overall ({best}): {results[best]:.1f}x")
    return results


if __name__ == '__main__':
    main()
