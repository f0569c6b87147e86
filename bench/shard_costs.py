"""Seconds per item of the paper run's steps on this GPU: the calibration file of `--dry-run --calibrate`.

    python bench/shard_costs.py --vqgan-config CONFIG --vqgan-ckpt CKPT --out costs.json [--device cuda]
        [--sample-batch 256] [--tis-images 64] [--train-batch 256] [--repeats 2]

Measures, on one device, what the dry run multiplies by the run's item counts (`sharding.scaling_table`):
- `sample`: seconds per grid of the VQGAN's own sampler (a batch of `--sample-batch` grids of one class, the
  synthetic store's chunk);
- `tis_ce`, `tis_re`, `tis_te`: seconds per image of TIS at the preset's N (`TokenImportance.for_preset`),
  over `--tis-images` images of random codebook ids;
- `train_ce`, `train_re`, `train_te`: seconds per training image of one optimizer step (forward, backward,
  Adam) on a batch of `--train-batch`, fp32 (the TE trains under fp16 autocast on a GPU: an upper bound).
The IEMs have random weights (the cost does not depend on them) and the sizes the VQGAN's config implies (d,
m, classes). Each timing is the best of `--repeats` after one warm-up; on CUDA the peak memory allocated is
written too. The file says `"sizes": "paper"` only for the paper's VQGAN (16×16 grids, K = 16384, d = 256,
1000 classes); the dry run refuses any other (seconds per item do not transfer between sizes).
"""

import argparse, json, time

import torch

from cortex_nb.core import get_preset, machine_description
from cortex_nb.iem import build_iem
from cortex_nb.iem_training import TrainConfig, make_optimizer
from cortex_nb.codebook import embed_tokens
from cortex_nb.taming import parse_taming_config, vqgan_for_run
from cortex_nb.tis import TokenImportance


def timed(fn, device, repeats: int) -> tuple[float, float | None]:
    "(best seconds of `repeats` calls after a warm-up, peak GB allocated on CUDA or None)."
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    fn()
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == 'cuda' else None
    return best, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--vqgan-config', required=True)
    ap.add_argument('--vqgan-ckpt', required=True)
    ap.add_argument('--out', required=True, help='calibration file to write (JSON)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--sample-batch', type=int, default=256)
    ap.add_argument('--tis-images', type=int, default=64)
    ap.add_argument('--train-batch', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=2)
    a = ap.parse_args()
    device = torch.device(a.device)
    cfg = parse_taming_config(a.vqgan_config)
    m, d, K, n = cfg.grid_size, cfg.embed_dim, cfg.n_embed, cfg.n_classes
    paper = (m, K, d, n) == (16, 16384, 256, 1000)
    P = get_preset('paper').replace(grid_size=m, embed_dim=d, codebook_size=K)
    vqgan, _ = vqgan_for_run(a.vqgan_config, a.vqgan_ckpt, device=device)
    seconds, peaks = {}, {}
    t, peaks['sample'] = timed(lambda: vqgan.sample([0], n=a.sample_batch, seed=0), device, a.repeats)
    seconds['sample'] = t / a.sample_batch
    codebook = vqgan.codebook.detach().float().to(device)
    g = torch.Generator().manual_seed(0)
    for arch in ('ce', 're', 'te'):
        model = build_iem(arch, P, n).to(device)
        ids = torch.randint(0, K, (max(a.tis_images, a.train_batch), m, m), generator=g).to(device)
        y = torch.randint(0, n, (len(ids),), generator=g).to(device)
        ti = TokenImportance.for_preset(model.eval(), P)
        E = embed_tokens(ids[: a.tis_images], codebook)
        t, peaks[f'tis_{arch}'] = timed(lambda: ti.attribute(E, y[: a.tis_images]), device, a.repeats)
        seconds[f'tis_{arch}'] = t / a.tis_images
        opt, _ = make_optimizer(model, TrainConfig.for_preset(P, arch), 1)
        Et, yt = embed_tokens(ids[: a.train_batch], codebook), y[: a.train_batch]

        def step():
            model.train()
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(Et), yt).backward()
            opt.step()

        t, peaks[f'train_{arch}'] = timed(step, device, a.repeats)
        seconds[f'train_{arch}'] = t / a.train_batch
    rec = {
        'machine': machine_description(device),
        'device': str(device),
        'sizes': 'paper' if paper else f'm={m}, K={K}, d={d}, {n} classes',
        'item_seconds': seconds,
        'peak_gb': peaks,
        'batches': {'sample': a.sample_batch, 'tis': a.tis_images, 'train': a.train_batch},
    }
    with open(a.out, 'w') as f:
        json.dump(rec, f, indent=2)
    print(json.dumps(rec, indent=2))


if __name__ == '__main__':
    main()
