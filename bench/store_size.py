"""Bytes per stored image in a token store vs a float32 embedding (paper scale: K=16384, d=256, m=16).

usage: python bench/store_size.py [--n 2000] [--shard-size 4096] [--grid 16] [--codebook-size 16384] [--embed-dim 256]
"""

import argparse, tempfile
from pathlib import Path

import numpy as np

from cortex_nb.store import TokenStoreWriter, TokenStore, store_bytes_per_image


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=2000, help='grids to write')
    ap.add_argument('--shard-size', type=int, default=4096)
    ap.add_argument('--grid', type=int, default=16, help='m')
    ap.add_argument('--codebook-size', type=int, default=16384, help='K')
    ap.add_argument('--embed-dim', type=int, default=256, help='d (for the float32 comparison)')
    ap.add_argument('--conditions', type=int, default=1000)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / 'store'
        with TokenStoreWriter(
            root,
            a.codebook_size,
            a.grid,
            [f'c{i}' for i in range(a.conditions)],
            {'vqgm': 'bench/store_size'},
            shard_size=a.shard_size,
        ) as w:
            w.append(
                rng.integers(0, a.codebook_size, (a.n, a.grid, a.grid)),
                rng.integers(0, a.conditions, a.n),
                'train',
            )
        store = TokenStore(root)
        bpi = store_bytes_per_image(store)
        disk = sum(p.stat().st_size for p in root.rglob('*') if p.is_file())
    float_bytes = a.embed_dim * a.grid * a.grid * 4
    print(
        f"grids: {a.n}  K={a.codebook_size}  m={a.grid}  shard_size={a.shard_size}  ids dtype: {store.ids_dtype}"
    )
    print(f"store on disk: {disk} bytes  ->  {bpi:.1f} bytes/image")
    print(f"float32 embedding (d={a.embed_dim}): {float_bytes} bytes/image")
    print(f"ratio: 1/{float_bytes / bpi:.1f}  (requirement: at most 1/400)")
    return bpi, float_bytes


if __name__ == '__main__':
    main()
