"""Token sampling with the preallocated KV cache vs a cache that grows by concatenation.

`sample_tokens` (cortex_nb.predictor) allocates the keys and values of every block once (`KVCache`) and each
step writes its position in place. The baseline here is the usual growing cache: each step concatenates the
new keys/values to the past (`torch.cat`), which copies the whole past every step, O(T²) memory traffic over
a sequence. Both draw the same tokens from the same generator seed; the script checks that they are equal
and prints the throughput ratio.

GPT of the tiny preset (4 layers, width 128, 8×8 grid + condition, K = 512) or of a wider size, random weights.

usage: python bench/sampling.py [--batch 600] [--width 128] [--layers 4] [--grid 8] [--threads 2] [--repeats 2]
"""

import argparse, time

import torch
import torch.nn.functional as F

from cortex_nb.predictor import GPT, GPTConfig, sample_tokens, _filter_logits


@torch.no_grad()
def sample_with_concatenated_cache(gpt, cond_tokens, n_steps, temperature, top_k, generator, n_codes):
    "Unguided sampling whose per-block cache grows by torch.cat every step (the baseline)."
    x, past, out = cond_tokens[:, None], None, torch.empty(len(cond_tokens), n_steps, dtype=torch.long)
    for t in range(n_steps):
        P = 0 if past is None else past[0][0].shape[2]
        h = gpt.drop(gpt.tok_emb(x) + gpt.pos_emb[:, P : P + 1])
        presents = []
        for i, block in enumerate(gpt.blocks):
            attn, a = block.attn, block.ln1(h)
            B, T, C = a.shape
            heads = lambda z: z.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2)
            q, k, v = heads(attn.query(a)), heads(attn.key(a)), heads(attn.value(a))
            if past is not None:
                k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
            presents.append((k, v))
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
            h = h + attn.proj(y)
            h = h + block.mlp(block.ln2(h))
        past = presents
        logits = gpt.head(gpt.ln_f(h))[:, -1].float()
        nxt = torch.multinomial(
            F.softmax(_filter_logits(logits, temperature, top_k, n_codes), -1), 1, generator=generator
        )
        out[:, t] = nxt[:, 0]
        x = nxt
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=600)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--grid', type=int, default=8)
    ap.add_argument('--codes', type=int, default=512)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n_steps = a.grid**2
    gpt = GPT(
        GPTConfig(vocab_size=a.codes + 10, block_size=n_steps + 1, n_layer=a.layers, n_head=4, n_embd=a.width)
    ).eval()
    cond = torch.randint(a.codes, a.codes + 10, (a.batch,))
    runs = {
        'preallocated': lambda g: sample_tokens(gpt, cond, n_steps, 0.8, 16, g, a.codes),
        'concatenated': lambda g: sample_with_concatenated_cache(gpt, cond, n_steps, 0.8, 16, g, a.codes),
    }
    best, tokens = {}, {}
    for name, fn in runs.items():
        fn(torch.Generator().manual_seed(0))  # warm-up
        for _ in range(a.repeats):
            t = time.perf_counter()
            tokens[name] = fn(torch.Generator().manual_seed(1))
            best[name] = min(best.get(name, float('inf')), time.perf_counter() - t)
    same = torch.equal(tokens['preallocated'], tokens['concatenated'])
    print(f"GPT {a.layers}x{a.width}, {n_steps} tokens per grid, batch {a.batch}, {a.threads} threads")
    for name, t in best.items():
        print(f"  {name:>12s} cache: {t:6.2f} s  ({a.batch / t:7.1f} grids/s)")
    print(
        f"  preallocated / concatenated throughput: {best['concatenated'] / best['preallocated']:.2f}x; same tokens: {same}"
    )
    if not same:
        raise SystemExit("the two caches drew different tokens")


if __name__ == '__main__':
    main()
