"""Codebook-level token selection: batched masked optimization vs the authors' full-matrix formulation.

Paper sizes by default: K=16384, d=256, 16×16 grid, 4×4 mask, CE (App. A.3.1) with random weights, 1000 concepts.
Ours (`cortex_nb.codebook_opt.TokenSelection`): logits for the masked positions only, many images per step.
Authors' (`full_matrix_token_selection`): the full 256×16384 P per image (fixed rows one-hot at ±300,
optimizable rows randn, masked gradient), one image at a time. Same steps, same IEM (parameters frozen in
both, eval mode). Throughput is images×steps per second, from the difference of a (1 + steps)-step and a
1-step run (so set-up and the result's extra scoring forwards are not counted for either). Memory is the
optimized state per image: the logits plus Adam's two moment tensors, read off the optimizer.

usage: python bench/codebook_opt.py [--steps 3] [--batch 16] [--authors-images 2] [--threads 2] [--device cpu]
                                    [--arch ce|linear] [--out result.json]
"""

import argparse, json, time

import torch
import torch.nn as nn

from cortex_nb.core import get_device
from cortex_nb.iem import build_iem
from cortex_nb.codebook_opt import (
    CodebookOptConfig,
    TokenSelection,
    central_mask,
    full_matrix_token_selection,
)


class LinearIEM(nn.Module):
    "A near-free IEM (mean-pool + linear), to isolate the cost of the selection machinery itself."

    def __init__(self, d, n):
        super().__init__()
        self.fc = nn.Linear(d, n)

    def forward(self, E):
        return self.fc(E.mean((2, 3)))


def _sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def _timed(fn, dev):
    _sync(dev)
    t = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t


def adam_state_bytes(param: torch.Tensor, lr: float = 0.01) -> int:
    "Bytes of `param` plus its Adam state after one step (what the optimization keeps alive)."
    p = param.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    p.grad = torch.ones_like(p)
    opt.step()
    st = opt.state[p]
    return p.numel() * p.element_size() + sum(
        v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.numel() > 1
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--grid', type=int, default=16)
    ap.add_argument('--codebook-size', type=int, default=16384)
    ap.add_argument('--embed-dim', type=int, default=256)
    ap.add_argument('--classes', type=int, default=1000)
    ap.add_argument('--mask-side', type=int, default=4)
    ap.add_argument('--mask-start', type=int, default=7)
    ap.add_argument('--steps', type=int, default=3, help='timed steps (after one untimed step)')
    ap.add_argument('--batch', type=int, default=16, help='images per batched optimization (ours)')
    ap.add_argument('--authors-images', type=int, default=2, help='images run one at a time (authors)')
    ap.add_argument('--arch', default='ce', choices=['ce', 'linear'])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default=None)
    ap.add_argument('--out', default=None, help='write the numbers as JSON here')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = get_device(a.device)
    torch.manual_seed(0)
    K, d, m = a.codebook_size, a.embed_dim, a.grid
    iem = (
        build_iem('ce', 'paper', a.classes, in_channels=d, grid_size=m)
        if a.arch == 'ce'
        else LinearIEM(d, a.classes)
    )
    iem = iem.to(dev).eval().requires_grad_(False)
    codebook = torch.randn(K, d, device=dev)
    mask = central_mask(m, a.mask_side, a.mask_start)
    n_masked = int(mask.sum())
    ids = torch.randint(0, K, (max(a.batch, a.authors_images), m, m))
    targets = torch.randint(0, a.classes, (len(ids),))

    # ours: batched, masked rows only
    ts = TokenSelection(iem, codebook, CodebookOptConfig(lr=0.01), n_concepts=a.classes)
    run = lambda s: ts.optimize(ids[: a.batch], mask, targets[: a.batch], steps=s, checkpoint_every=s)
    run(1)  # warm-up (allocator, kernels)
    t1, tn = _timed(lambda: run(1), dev), _timed(lambda: run(1 + a.steps), dev)
    ours_ips = a.batch * a.steps / max(tn - t1, 1e-9)
    # authors: one image at a time, full m² × K matrix
    full = lambda i, s: full_matrix_token_selection(
        iem, codebook, ids[i], mask, int(targets[i]), steps=s, lr=0.01, seed=i
    )
    full(0, 1)
    t1 = sum(_timed(lambda i=i: full(i, 1), dev) for i in range(a.authors_images))
    tn = sum(_timed(lambda i=i: full(i, 1 + a.steps), dev) for i in range(a.authors_images))
    authors_ips = a.authors_images * a.steps / max(tn - t1, 1e-9)

    ours_bytes = adam_state_bytes(torch.randn(n_masked, K, device=dev))  # per image: its masked rows
    authors_bytes = adam_state_bytes(torch.randn(m * m, K, device=dev))  # per image: the full matrix
    res = {
        'device': str(dev),
        'threads': a.threads,
        'arch': a.arch,
        'K': K,
        'd': d,
        'grid': m,
        'masked_positions': n_masked,
        'steps': a.steps,
        'batch': a.batch,
        'authors_images': a.authors_images,
        'ours_images_steps_per_s': ours_ips,
        'authors_images_steps_per_s': authors_ips,
        'speedup': ours_ips / authors_ips,
        'ours_state_bytes_per_image': ours_bytes,
        'authors_state_bytes_per_image': authors_bytes,
        'memory_ratio': authors_bytes / ours_bytes,
    }
    print(
        f"device {dev} ({a.threads} threads), IEM {a.arch}, K={K}, d={d}, {m}×{m} grid, {n_masked} masked positions, {a.steps} timed steps"
    )
    print(
        f"ours    (batch {a.batch:3d}, masked rows):   {ours_ips:8.3f} images×steps/s   state {ours_bytes / 2**20:7.2f} MiB/image"
    )
    print(
        f"authors (1 image, full {m * m}×{K} P): {authors_ips:8.3f} images×steps/s   state {authors_bytes / 2**20:7.2f} MiB/image"
    )
    print(
        f"ratios: throughput {res['speedup']:.2f}× (target ≥ 3×), optimized-state memory {res['memory_ratio']:.1f}× less (target ≥ 10×)"
    )
    if a.out:
        with open(a.out, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
