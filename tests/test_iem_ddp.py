"""IEM training under DistributedDataParallel on CPU (gloo): exact equivalence of the gradient step, and learning.

SyncBatchNorm refuses CPU modules, so with BatchNorm in train mode each process normalizes with its own
half-batch statistics and a 2-process step cannot equal a 1-process step. (a) therefore holds BatchNorm on
its running statistics (--freeze-batchnorm) and turns dropout off; (b) trains normally and checks learning.
"""

import json, os, socket, subprocess, sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import save_file

from cortex_nb.iem_training import main, make_random_store

ARCHS = {  # small widths: the test is about the distributed step, not capacity
    'ce': {'width': 8, 'convs_per_block': 1, 'fc_dim': 16, 'dropout': 0.0},
    're': {'width': 8, 'blocks_per_layer': 1, 'se_reduction': 4, 'fc_dim': 16, 'dropout': 0.0},
    'te': {'dim': 16, 'depth': 1, 'heads': 2, 'mlp_dim': 32, 'head_dim': 16, 'dropout': 0.0},
}
GLOBAL_BATCH, STEPS = 16, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _args(root: Path, arch: str, out: Path, *extra) -> list[str]:
    return [
        '--store',
        str(root / 'store'),
        '--codebook',
        str(root / 'codebook.safetensors'),
        '--arch',
        arch,
        '--out',
        str(out),
        '--batch-size',
        str(GLOBAL_BATCH),
        '--iem',
        json.dumps(ARCHS[arch]),
        '--no-progress',
        *extra,
    ]


def _worker(rank: int, world: int, port: int, root: str):
    "One process of the 2-process run: join the group as torchrun would, then call the CLI entry point."
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    root = Path(root)
    torch.distributed.init_process_group(
        'gloo'
    )  # one group for the three runs (main() joins it, leaves it open)
    for arch in ARCHS:
        main(_args(root, arch, root / f'ddp-{arch}', '--epochs', '1', '--freeze-batchnorm'))
    torch.distributed.destroy_process_group()


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('iem_ddp')
    # STEPS global batches per epoch exactly, so both runs see the same batches
    vqgm, _ = make_random_store(
        root / 'store', n_concepts=4, n_per_concept=(GLOBAL_BATCH * STEPS // 4, 8, 8), logit_scale=3.0
    )
    save_file({'codebook': vqgm.codebook.contiguous()}, str(root / 'codebook.safetensors'))
    return root


def test_ddp_step_equals_single_process(data):
    "(a) after STEPS optimizer steps, 2 gloo processes on half-batches = 1 process on the global batch (BN frozen)."
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(2, _free_port(), str(data)), nprocs=2, join=True)
    for arch in ARCHS:
        single = main(
            _args(
                data, arch, data / f'single-{arch}', '--epochs', '1', '--freeze-batchnorm', '--device', 'cpu'
            )
        )  # as the gloo group, GPU or not
        ddp = json.loads((data / f'ddp-{arch}' / 'metrics.json').read_text())
        assert ddp['world_size'] == 2 and single['world_size'] == 1
        a = torch.load(data / f'single-{arch}' / 'state.pt', weights_only=True)
        b = torch.load(data / f'ddp-{arch}' / 'state.pt', weights_only=True)
        assert a['optimizer']['state'][0]['step'] == STEPS == b['optimizer']['state'][0]['step']
        assert a['optimizer']['state'][0]['exp_avg'].abs().sum() > 0  # gradients did flow
        for k, v in a['model'].items():
            w, v = b['model'][k], v
            if k.endswith('attn.in_proj_bias'):
                # the key bias adds q·b_k to every logit of a softmax row, so its gradient is analytically zero:
                # what Adam sees there is float noise, normalized to steps of size ≈ lr. Bound it, then compare the rest.
                d = v.numel() // 3
                assert (w[d : 2 * d] - v[d : 2 * d]).abs().max() <= 2 * STEPS * 1e-3
                w, v = torch.cat([w[:d], w[2 * d :]]), torch.cat([v[:d], v[2 * d :]])
            torch.testing.assert_close(w, v, rtol=1e-4, atol=1e-6, msg=lambda m: f"{arch} {k}: {m}")
        assert abs(a['history'][0]['train_loss'] - b['history'][0]['train_loss']) < 1e-5


def test_ddp_training_learns_under_torchrun(data):
    "(b) `torchrun --nproc_per_node=2 -m cortex_nb.iem_training` in train mode (BatchNorm per process): the loss falls."
    out = data / 'torchrun-ce'
    cmd = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--standalone',
        '--nproc_per_node=2',
        '-m',
        'cortex_nb.iem_training',
        *_args(data, 'ce', out, '--epochs', '4'),
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / 'metrics.json').read_text())
    assert m['world_size'] == 2
    losses = [h['train_loss'] for h in m['history']]
    assert losses[-1] < 0.9 * losses[0], losses
    assert m['top1'] > 0.25 + 0.1, m  # above chance (4 concepts)
