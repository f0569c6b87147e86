"""One training step of the tiny predictor: fp32, plain bf16 autocast, and bf16 autocast with fp32 attention.

`train_predictor` (cortex_nb.predictor) runs under bf16 autocast where the CPU computes bf16 natively
(`PredictorConfig.precision`), and `attention` leaves autocast for the attention itself: on a CPU with AMX a
bf16 matmul of this size is several times faster than fp32, but the bf16 flash-attention backward is
several times slower, so plain autocast can lose to fp32. This script times the three variants on the same
batches, prints seconds per step and the ratios, and the largest relative difference of the first step's
loss and logits against fp32 (bf16 keeps about 3 significant digits).

GPT of the tiny preset (4 layers, width 128, 8×8 grid + condition, K = 512), random weights, batch 64.

usage: python bench/predictor_step.py [--batch 64] [--width 128] [--layers 4] [--grid 8] [--threads 2] [--steps 30]
"""

import argparse, copy, time

import torch
import torch.nn.functional as F

import cortex_nb.predictor as predictor
from cortex_nb.core import autocast, native_bf16
from cortex_nb.predictor import GPT, GPTConfig, next_token_loss


def plain_attention(q, k, v, **kwargs):
    "SDPA as autocast leaves it (bf16 under bf16 autocast): the variant `attention` avoids."
    return F.scaled_dot_product_attention(q, k, v, **kwargs)


def time_steps(gpt, batches, precision, n_codes):
    "Seconds per optimizer step over `batches` (after one warm-up step), and the first step's logits."
    gpt = copy.deepcopy(gpt).train()
    opt = torch.optim.AdamW(gpt.parameters(), lr=1e-3, betas=(0.9, 0.95))

    def step(batch):
        loss = next_token_loss(gpt, batch, n_codes, precision)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gpt.parameters(), 1.0)
        opt.step()

    with torch.no_grad(), autocast(precision):
        first = gpt(batches[0][:, :-1])[..., :n_codes].float()
    step(batches[0])
    t = time.perf_counter()
    for b in batches[1:]:
        step(b)
    return (time.perf_counter() - t) / (len(batches) - 1), first


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--grid', type=int, default=8)
    ap.add_argument('--codes', type=int, default=512)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gpt = GPT(
        GPTConfig(
            vocab_size=a.codes + 11, block_size=a.grid**2 + 1, n_layer=a.layers, n_head=4, n_embd=a.width
        )
    )
    batches = [torch.randint(0, a.codes, (a.batch, a.grid**2 + 1)) for _ in range(a.steps + 1)]
    print(
        f"GPT {a.layers}x{a.width}, {a.grid**2} tokens + condition, batch {a.batch}, {a.threads} threads, "
        f"native bf16: {native_bf16()}"
    )
    seconds, logits = {}, {}
    seconds['fp32'], logits['fp32'] = time_steps(gpt, batches, 'fp32', a.codes)
    seconds['bf16, fp32 attention'], logits['bf16, fp32 attention'] = time_steps(
        gpt, batches, 'bf16', a.codes
    )
    library_attention, predictor.attention = predictor.attention, plain_attention
    try:
        seconds['bf16, bf16 attention'], logits['bf16, bf16 attention'] = time_steps(
            gpt, batches, 'bf16', a.codes
        )
    finally:
        predictor.attention = library_attention
    ref = logits['fp32']
    for name, s in seconds.items():
        rel = float((logits[name] - ref).abs().max() / ref.abs().max())
        print(
            f"  {name:>22s}: {s * 1e3:7.1f} ms/step  fp32 / this: {seconds['fp32'] / s:4.2f}x  "
            f"max |logit - fp32| / max |fp32|: {rel:.1e}"
        )


if __name__ == '__main__':
    main()
