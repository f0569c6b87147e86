"""Throughput of the batched TIS (one backward per chunk of images × noise samples) vs the authors' per-image loop.

Paper-size CE (d=256, m=16, 1000 concepts, random weights), eval mode, the same noise for both.
The loop (one forward of the batch per noise sample, then one autograd.grad per image with
create_graph=True, as in the authors' code) is timed on --loop-samples noise samples and scaled to
--samples: both costs are linear in the number of noise samples. With --loop-images j < batch, only the
first j per-image backward passes (each through the whole batch's graph, so each costs the same) are
timed and the loop time is extrapolated as t_forward + batch * mean(t_backward); the output says so.

With --noise-ahead it times only the default-noise path instead: TIS with each image's seeded noise drawn
ahead on a pool of CPU threads (`NoiseAhead`, the default) against drawn inline when needed (noise_workers=1), on
--device, and checks that both give the same S. The gain shows where the model is fast and the CPU noise is not
(a GPU); on a CPU the compute hides it.

usage: python bench/tis.py [--batch 25] [--samples 20] [--loop-samples 1] [--loop-images 25] [--threads 2]
                           [--max-batch 100] [--plain] [--no-bf16] [--noise-ahead [--device cuda]]
"""

import argparse, time

import torch

from cortex_nb.iem import build_iem
from cortex_nb.tis import TokenImportance, image_noise


def _timed(fn, repeats=1):
    best, out = float('inf'), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def loop_timed(model, E, y, noise, n_images, alpha=0.2):
    """The authors' loop on noise samples `noise` (B, L, ...): per sample one batch forward, then per image one grad
    (create_graph=True), timing forward and backward apart; only the first n_images backward passes are run."""
    from cortex_nb.tis import smoothgrad_sigma

    B, L = noise.shape[:2]
    sigma = smoothgrad_sigma(E, alpha).view(-1, 1, 1, 1)
    S = torch.zeros_like(E[:n_images])
    t_fwd = t_bwd = 0.0
    for l in range(L):
        X = (E + sigma * noise[:, l]).requires_grad_(True)
        t = time.perf_counter()
        f = model(X).softmax(-1).gather(1, y[:, None])[:, 0]
        t_fwd += time.perf_counter() - t
        t = time.perf_counter()
        for i in range(n_images):
            (g,) = torch.autograd.grad(f[i], X, retain_graph=True, create_graph=True)
            S[i] += g[i].detach()
        t_bwd += time.perf_counter() - t
    return S / L, t_fwd + t_bwd * B / n_images, n_images < B


def plain_one_backward(model, E, y, noise, alpha=0.2, max_batch=100):
    "SmoothGrad with one .backward() per chunk, parameters left trainable (weight grads computed too): the plain version."
    from cortex_nb.tis import smoothgrad_sigma

    B, N = noise.shape[:2]
    sigma = smoothgrad_sigma(E, alpha).view(-1, 1, 1, 1, 1)
    X_all = (E[:, None] + sigma * noise).reshape(B * N, *E.shape[1:])
    yy = y.repeat_interleave(N)
    G = torch.empty_like(X_all)
    for a in range(0, B * N, max_batch):
        X = X_all[a : a + max_batch].clone().requires_grad_(True)
        model(X).softmax(-1).gather(1, yy[a : a + max_batch, None]).sum().backward()
        G[a : a + max_batch] = X.grad
    model.zero_grad(set_to_none=True)
    return G.view(B, N, *E.shape[1:]).mean(1)


def noise_ahead_timed(model, E, y, samples, max_batch, repeats=2):
    "Seconds of TIS with the default noise drawn ahead on threads vs inline, the ratio, and whether S is the same."
    sync = torch.cuda.synchronize if E.device.type == 'cuda' else (lambda: None)

    def run(workers):
        ti = TokenImportance(model, n_samples=samples, max_batch=max_batch, noise_workers=workers)

        def go():
            S = ti.saliency(E, y)
            sync()
            return S

        return _timed(go, repeats)

    (t_inline, S_inline), (t_ahead, S_ahead) = run(1), run(None)
    same = torch.equal(S_inline, S_ahead)
    print(
        f"TIS of {len(E)} images, N={samples}, on {E.device} ({torch.get_num_threads()} CPU threads draw the noise): "
        f"inline {t_inline:.2f} s, drawn ahead {t_ahead:.2f} s; RATIO {t_inline / t_ahead:.2f}x; S identical: {same}"
    )
    return {'inline_s': t_inline, 'ahead_s': t_ahead, 'identical': same}


def topn_agreement(a: torch.Tensor, b: torch.Tensor, n: int) -> float:
    "Mean fraction of the top-n positions of TIS map a that are also top-n in b."
    ta, tb = a.flatten(1).topk(n, 1).indices, b.flatten(1).topk(n, 1).indices
    return float(torch.stack([torch.isin(x, y).float().mean() for x, y in zip(ta, tb)]).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=25)
    ap.add_argument('--samples', type=int, default=20, help='N noise samples of SmoothGrad')
    ap.add_argument(
        '--loop-samples', type=int, default=1, help='noise samples the loop is timed on (scaled to --samples)'
    )
    ap.add_argument(
        '--loop-images',
        type=int,
        default=25,
        help='per-image backward passes of the loop actually timed (extrapolated to --batch)',
    )
    ap.add_argument(
        '--plain',
        action='store_true',
        help='also time a plain one-backward version (weight gradients computed too)',
    )
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument(
        '--max-batch',
        type=int,
        default=100,
        help='rows (image x noise sample) per backward of the batched path',
    )
    ap.add_argument('--grid', type=int, default=16)
    ap.add_argument('--embed-dim', type=int, default=256)
    ap.add_argument('--classes', type=int, default=1000)
    ap.add_argument('--codebook-size', type=int, default=16384)
    ap.add_argument('--top-n', type=int, default=20)
    ap.add_argument('--no-bf16', action='store_true', help='skip the bfloat16 autocast variant')
    ap.add_argument('--no-channels-last', action='store_true', help='skip the fp32 channels-last variant')
    ap.add_argument(
        '--raw-bn',
        action='store_true',
        help='keep freshly initialised BatchNorm statistics (0/1): saturated softmax, tiny gradients',
    )
    ap.add_argument(
        '--noise-ahead',
        action='store_true',
        help='time only the default noise drawn ahead on threads vs inline',
    )
    ap.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='where the model runs for --noise-ahead',
    )
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build_iem('ce', 'paper', a.classes, in_channels=a.embed_dim, grid_size=a.grid)
    codebook = torch.randn(a.codebook_size, a.embed_dim)
    ids = torch.randint(0, a.codebook_size, (a.batch, a.grid, a.grid))
    E = codebook[ids].movedim(-1, 1).contiguous()
    if (
        not a.raw_bn
    ):  # BatchNorm running statistics from one pass over other random grids, as a trained net would have
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.momentum = None
                    mod.reset_running_stats()
            model.train()(codebook[torch.randint(0, a.codebook_size, (64, a.grid, a.grid))].movedim(-1, 1))
    model.eval()
    y = torch.randint(0, a.classes, (a.batch,))
    noise = torch.stack([image_noise(E.shape[1:], 0, i, a.samples) for i in range(a.batch)])
    L = min(a.loop_samples, a.samples)
    with torch.no_grad():
        p = model(E).softmax(-1)
    print(
        f"BatchNorm statistics: {'fresh (0/1)' if a.raw_bn else 'from one pass over 64 random grids'}; "
        f"max softmax prob on the inputs: median {p.max(1).values.median():.3g}"
    )
    print(
        f"CE d={a.embed_dim} m={a.grid} n={a.classes}, batch {a.batch}, N={a.samples}, {a.threads} thread(s), max_batch {a.max_batch}"
    )

    if a.noise_ahead:
        return noise_ahead_timed(model.to(a.device), E.to(a.device), y, a.samples, a.max_batch)

    J = min(a.loop_images, a.batch)
    S_loop, t_loop, extrapolated = loop_timed(model, E, y, noise[:, :L], J)
    t_loop_full = t_loop * a.samples / L
    note = (
        f"; backward passes of {J} of {a.batch} images timed, extrapolated to {a.batch}"
        if extrapolated
        else ''
    )
    print(
        f"loop   (authors' cost): {t_loop:.2f} s for {L} noise sample(s){note} -> {t_loop_full:.1f} s for N={a.samples} "
        f"(scaled, linear in N): {a.batch / t_loop_full:.3f} images/s"
    )

    results = {}
    if a.plain:
        t, S_plain = _timed(lambda: plain_one_backward(model, E, y, noise, max_batch=a.max_batch))
        print(
            f"{'plain one-backward (weight grads too)':36s}: {t:.1f} s -> {a.batch / t:.3f} images/s, {t_loop_full / t:.1f}x the loop"
        )
        results['plain one-backward'] = t_loop_full / t
    variants = [('batched fp32', {})] + (
        [] if a.no_channels_last else [('batched fp32 channels-last', {'channels_last': True})]
    )
    if not a.no_bf16:
        variants.append(
            ('batched bf16 autocast channels-last', {'channels_last': True, 'autocast_dtype': torch.bfloat16})
        )
    ref_tis, rels = None, {}
    for name, kw in variants:
        ti = TokenImportance(model, n_samples=a.samples, max_batch=a.max_batch, **kw)
        t, (tis, S) = _timed(lambda: ti.attribute(E, y, noise=noise, return_saliency=True))
        ips = a.batch / t
        # equality with the loop on the same noise samples the loop used
        S_sub = TokenImportance(model, n_samples=L, max_batch=a.max_batch, **kw).saliency(
            E, y, noise=noise[:, :L]
        )
        S_sub = S_sub[:J]
        diff = (S_sub - S_loop).abs().max().item()
        rel = diff / S_loop.abs().max().item()
        line = (
            f"{name:36s}: {t:.1f} s -> {ips:.3f} images/s, {t_loop_full / t:.1f}x the loop; "
            f"max |S - S_loop| = {diff:.3g} (relative to max|S_loop|: {rel:.3g})"
        )
        if ref_tis is None:
            ref_tis = tis
        else:
            line += f"; top-{a.top_n} agreement with fp32: {topn_agreement(tis, ref_tis, a.top_n):.3f}"
        print(line)
        results[name] = t_loop_full / t
        rels[name] = rel
    best = max(results, key=results.get)
    # the fp32 claim counts only layouts whose saliency equals the loop's within 1e-5 (relative)
    exact = {
        k: v for k, v in results.items() if 'bf16' not in k and 'plain' not in k and rels.get(k, 1.0) <= 1e-5
    }
    if exact:
        name = max(exact, key=exact.get)
        print(
            f"RATIO fp32 batched/loop throughput, saliency equal to the loop's within 1e-5: {exact[name]:.1f}x ({name}); "
            f"best overall ({best}): {results[best]:.1f}x"
        )
    else:
        print(
            f"RATIO: no fp32 variant equals the loop within 1e-5; best overall ({best}): {results[best]:.1f}x"
        )
    return results


if __name__ == '__main__':
    main()
