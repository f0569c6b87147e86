"""Sampling, TIS and the bias audit's heavy steps under `torchrun --nproc-per-node 2` (gloo, CPU), against one process.

(a) the merged store, the TIS maps, T*_image and T*_concept of a 2-process job are byte-identical to a
    single-process run (`build_synthetic_store`, `explain_split`, `image_token_sets`, `concept_token_sets`);
(b) a rank killed (SIGKILL) in the middle of sampling stops the job, naming the rank; the relaunch completes
    the store with no grid missing or drawn twice (ids, and a checksum per concept);
    a rank failing while explaining stops the job with its rank and error (`launch` → `StepFailed`), and a
    relaunch on another number of processes resumes from the parts written;
    the bias audit's stores (sampled by a 2-process job) and TIS are the ones `audit_bias` makes alone;
(c) the paper dry run prints the per-step plan (passes, memory per GPU, hours) for P = 1 and P = 8.
Every process runs one torch thread, as the single-process reference does, so that float reductions agree.
"""

import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from cortex_nb.codebook import RandomVQGM
from cortex_nb.core import ArtifactCache
from cortex_nb.iem import build_iem
from cortex_nb.iem_training import save_iem
from cortex_nb.sharding import StepFailed, concept_checksums, launch
from cortex_nb.store import TokenStore
from cortex_nb.synthetic import build_synthetic_store
from cortex_nb.tis import TokenImportance, explain_split, per_concept_index
from cortex_nb.token_sets import concept_token_sets, image_token_sets

VQGM = dict(codebook_size=32, embed_dim=4, grid_size=4, image_size=16, conditions=['a', 'b', 'c'])
COUNTS, BATCH, SHARD = (10, 4, 3), 4, 6
ENV = {'OMP_NUM_THREADS': '1', 'CORTEX_NB_FAULT': ''}


def torchrun(*args, nproc=2, env=None):
    "`torchrun --nproc-per-node N -m cortex_nb.sharding ARGS`, its output captured."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc-per-node={nproc}']
    cmd += ['-m', 'cortex_nb.sharding', *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **ENV, **(env or {})}
    )


def same_files(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a) for p in a.rglob('*') if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob('*') if p.is_file())
    return fa == fb and all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def per_concept(store: TokenStore) -> dict:
    "Each (split, concept)'s grids in store order."
    return {
        (sp, lab): store.ids(sp, np.nonzero(store.labels(sp) == lab)[0])
        for sp in store.splits
        for lab in range(len(store.conditions))
    }


def sample_args(out):
    return ['sample', '--vqgm', 'random:' + json.dumps(VQGM), '--out', out, '--counts', *COUNTS]


@pytest.fixture(scope='module')
def ref(tmp_path_factory):
    "The single-process store, a random CE with its codebook on disk, and its TIS, T*_image and T*_concept."
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('sharding')
    vq = RandomVQGM(**VQGM)
    store = build_synthetic_store(
        vq, root / 'single', *COUNTS, batch_size=BATCH, shard_size=SHARD, progress=False
    )
    iem = build_iem('ce', 'tiny', 3, in_channels=4, grid_size=4, width=8, convs_per_block=1, fc_dim=16).eval()
    save_iem(iem, root / 'iem')
    save_file({'codebook': vq.codebook.contiguous()}, str(root / 'codebook.safetensors'))
    ti = TokenImportance.for_preset(iem, 'tiny', n_samples=4)
    idx = per_concept_index(store.labels('train'), 7, 3)
    res = explain_split(ti, store, vq.codebook, 'train', idx, batch_size=BATCH, progress=False)
    save_file({k: v.contiguous() for k, v in res.items()}, str(root / 'tis.safetensors'))
    pos, picks = image_token_sets(res['tis'], res['ids'], 3)
    table = concept_token_sets(picks, res['labels'], 5, 32, 3, store.conditions)
    return dict(root=root, store=store, pos=pos, picks=picks, table=table)


def explain_args(r, store, out, *extra):
    return [
        'explain', '--store', store, '--codebook', r['root'] / 'codebook.safetensors', '--iem', r['root'] / 'iem',
        '--splits', 'train=7', '--samples', 4, '--batch-size', BATCH, '--top-n', 3, '--top-k', 5, '--out', out,
        '--no-progress', *extra,
    ]  # fmt: skip


def test_two_processes_equal_one(ref):
    "(a) sampling and TIS by 2 gloo processes: store, maps, T*_image and T*_concept byte-identical to 1 process."
    root = ref['root']
    p = torchrun(*sample_args(root / 'two'), '--batch-size', BATCH, '--shard-size', SHARD, '--no-progress')
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert same_files(ref['store'].root, root / 'two')  # shards, checksums and manifest: the same bytes
    assert json.loads((root / 'two.parts' / 'job.json').read_text())['launches'] == [2]
    p = torchrun(*explain_args(ref, root / 'two', root / 'tis2', '--part-batches', 1))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (root / 'tis2' / 'tis.safetensors').read_bytes() == (root / 'tis.safetensors').read_bytes()
    t_image = load_file(str(root / 'tis2' / 't_image.safetensors'))
    assert torch.equal(t_image['positions'], ref['pos']) and torch.equal(t_image['token_ids'], ref['picks'])
    pd.testing.assert_frame_equal(pd.read_csv(root / 'tis2' / 't_concept.csv'), ref['table'])


def test_killed_rank_then_relaunch(ref):
    "(b) rank 1 SIGKILLed after its 3rd chunk: the job stops naming rank 1; the relaunch completes the store."
    root = ref['root']
    args = [
        *sample_args(root / 'killed'),
        '--batch-size',
        BATCH,
        '--shard-size',
        SHARD,
        '--slot-shard-size',
        2,
    ]
    p = torchrun(*args, '--no-progress', env={'CORTEX_NB_FAULT': 'sample:1:3:kill'})
    assert p.returncode != 0
    cause = (p.stdout + p.stderr).split('Root Cause')[-1]
    assert 'rank      : 1' in cause and 'SIGKILL' in cause, cause[-2000:]
    assert not (root / 'killed' / 'manifest.json').exists()  # no store until every grid is there
    slot1 = TokenStore(root / 'killed.parts' / 'slot-001')
    assert 0 < len(slot1) < len(ref['store']) // 2  # rank 1 committed part of its share before it died
    p = torchrun(*args, '--no-progress')
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    store = TokenStore(root / 'killed')
    assert store.counts() == ref['store'].counts()  # no grid missing or duplicated
    got, want = per_concept(store), per_concept(ref['store'])
    assert all(np.array_equal(got[k], want[k]) for k in want)
    rec = json.loads((root / 'killed.parts' / 'job.json').read_text())
    assert rec['complete'] and rec['launches'] == [2, 2]
    assert rec['concept_sha256'] == concept_checksums(ref['store'])
    assert same_files(ref['store'].root, root / 'killed')


def test_failed_rank_is_named_and_another_world_size_resumes(ref):
    "(b) `launch`: rank 1 failing in TIS raises StepFailed with its rank and error; 1 process finishes the job."
    root = ref['root']
    args = explain_args(ref, ref['store'].root, root / 'tis-resumed', '--part-batches', 1)
    with pytest.raises(StepFailed) as e:
        launch(args[0], 2, args[1:], env={**ENV, 'CORTEX_NB_FAULT': 'explain:1:1'}, echo=False)
    msg = str(e.value)
    assert (
        "failed on rank 1 (exit code 1): RuntimeError: injected fault: CORTEX_NB_FAULT=explain:1:1" in msg
    ), msg
    assert 'launch it again to resume' in msg
    written = {p.name: p.stat().st_mtime_ns for p in (root / 'tis-resumed' / 'parts').glob('part-*')}
    assert written  # rank 0 (and rank 1 once) wrote parts before the job stopped
    launch(args[0], 1, args[1:], env=ENV, echo=False)  # the relaunch, on one process
    assert {n: (root / 'tis-resumed' / 'parts' / n).stat().st_mtime_ns for n in written} == written
    assert (root / 'tis-resumed' / 'tis.safetensors').read_bytes() == (root / 'tis.safetensors').read_bytes()


AUDIT_VQGM = dict(
    codebook_size=64, embed_dim=8, grid_size=8, image_size=8, conditions=['x', 'y', 'n'], logit_scale=1.5
)
AUDIT = dict(n_train=32, n_val=8, n_test=16, n_neutral=40, n_resamples=50, n_set_resamples=10, batch_size=16)
PAIRS = {'pair': ['x', 'y']}


def test_audit_steps_fill_the_cache_audit_bias_reads(tmp_path):
    "The audit's stores sampled by 2 processes, and its TIS, are what `audit_bias` makes alone: stores, sets, table 4."
    from cortex_nb.bias_audit import BiasAuditConfig, audit_bias
    from cortex_nb.sharding import main

    torch.set_num_threads(1)
    common = ['--vqgm', 'random:' + json.dumps(AUDIT_VQGM), '--pairs', json.dumps(PAIRS), '--neutral', 'n',
              '--audit-changes', json.dumps(AUDIT), '--cache-dir', tmp_path / 'sharded', '--no-progress']  # fmt: skip
    p = torchrun('audit-sample', *common)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    stores = list((tmp_path / 'sharded' / 'bias_store').glob('*/store.parts/job.json'))
    assert len(stores) == 1 and json.loads(stores[0].read_text())['launches'] == [2]  # sampled by the job
    main(
        ['audit-explain', *map(str, common)]
    )  # one process here: the torchrun path of `explain` is tested above
    n_tis = len(list((tmp_path / 'sharded' / 'tis').glob('*/DONE')))
    assert n_tis == 2  # one entry per attribute
    vq, cfg = RandomVQGM(**AUDIT_VQGM), BiasAuditConfig.for_preset('tiny', **AUDIT)
    sharded = audit_bias(vq, PAIRS, 'n', 'tiny', tmp_path / 'sharded', cfg, progress=False)
    assert len(list((tmp_path / 'sharded' / 'tis').glob('*/DONE'))) == n_tis  # nothing explained again
    alone = audit_bias(vq, PAIRS, 'n', 'tiny', tmp_path / 'alone', cfg, progress=False)
    a, b = (ArtifactCache(tmp_path / d).root / 'bias_store' for d in ('sharded', 'alone'))
    assert same_files(next(a.glob('*/store')), next(b.glob('*/store')))
    assert all(torch.equal(sharded.token_sets[k], alone.token_sets[k]) for k in alone.token_sets)
    pd.testing.assert_frame_equal(sharded.table4(), alone.table4())


def test_paper_dry_run_plans_one_and_eight_gpus(tmp_path, monkeypatch, capsys):
    "(c) the paper dry run prints, per step, passes, memory per GPU and hours on 1, P and 8 GPUs, with their source."
    import torchvision

    from cortex_nb.cli import main
    from cortex_nb.evaluators import torchvision_checkpoint_path
    from cortex_nb.taming import write_tiny_taming_checkpoint

    config, ckpt = write_tiny_taming_checkpoint(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))  # a random-weight ResNet-18 as the evaluator
    weights = torchvision_checkpoint_path('resnet18')
    weights.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    cal = tmp_path / 'cal.json'
    cal.write_text(json.dumps({'machine': 'test GPU', 'sizes': 'paper', 'item_seconds': {'sample': 1.0}}))
    argv = ['reproduce', '--preset', 'paper', '--dry-run', '--vqgan-config', config, '--vqgan-ckpt', ckpt,
            '--evaluators', 'resnet18', '--nproc-per-node', '4', '--calibrate', cal]  # fmt: skip
    assert main(list(map(str, argv))) == 0
    out = capsys.readouterr().out
    for word in ('passes', 'gpu_mem_gb', 'hours_1gpu', 'hours_4gpu', 'hours_8gpu', 'every GPU', 'one GPU'):
        assert word in out, word
    sample = next(l for l in out.splitlines() if l.startswith('sample synthetic grids') and 'every GPU' in l)
    assert sample.endswith('measured (test GPU)'), sample  # the calibrated kind says so
    assert (
        'counted FLOPs at 100 TFLOP/s (not measured)' in out
    )  # the others say where their estimate comes from


@pytest.mark.skipif(os.environ.get('CORTEX_NB_QUICK_TESTS') == '1', reason='CORTEX_NB_QUICK_TESTS=1')
def test_reproduce_launches_the_notebooks_step_under_torchrun(tmp_path, monkeypatch):
    "`reproduce(nproc_per_node=2)`: 01_vqgan samples under torchrun, its store is one process's; P is not in the key."
    import torchvision

    from cortex_nb.cli import reproduce
    from cortex_nb.core import get_preset
    from cortex_nb.evaluators import torchvision_checkpoint_path
    from cortex_nb.synthetic import get_synthetic_store
    from cortex_nb.taming import vqgan_for_run, write_tiny_taming_checkpoint

    monkeypatch.setenv(
        'TORCH_HOME', str(tmp_path / 'torch')
    )  # the kernel inherits it: a random-weight evaluator
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    weights = torchvision_checkpoint_path('resnet18')
    weights.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    cfg, ckpt = write_tiny_taming_checkpoint(tmp_path / 'vqgan')
    changes = {'n_train': 30, 'n_val': 8, 'n_test': 2}
    params = {
        'vqgan_config': str(cfg),
        'vqgan_ckpt': str(ckpt),
        'evaluator_names': ['resnet18'],
        'preset_changes': changes,
        'n_score_per_class': 1,  # little to decode and score: the run is about the sampling
        'n_show_classes': 2,
    }
    kw = dict(
        out=tmp_path / 'out',
        cache_dir=tmp_path / 'cache',
        progress=False,
        only=['01_vqgan'],
        extra_parameters=params,
    )
    runs = reproduce('tiny', nproc_per_node=2, **kw)
    assert [(r.name, r.status) for r in runs] == [('01_vqgan', 'ran')]
    (job,) = (tmp_path / 'cache' / 'synthetic').glob('*/store.parts/job.json')
    assert json.loads(job.read_text())['launches'] == [2]  # sampled by the torchrun job the notebook launched
    vqgan, key = vqgan_for_run(cfg, ckpt)
    _, alone = get_synthetic_store(
        get_preset('tiny', **changes), tmp_path / 'alone', vqgm=vqgan, vqgm_key=key, progress=False
    )
    assert same_files(job.parent.parent / 'store', alone.root)
    # the notebook ran with nproc_per_node = 2 and is fingerprinted without it: a run on 1 GPU skips it
    from cortex_nb.cli import PATH_PARAMETERS, input_stamp, notebook_fingerprint

    state = json.loads((tmp_path / 'out' / '.state' / '01_vqgan.json').read_text())
    assert state['parameters']['nproc_per_node'] == 2
    same = {k: v for k, v in state['parameters'].items() if k != 'nproc_per_node'}
    same['input_stamps'] = {k: input_stamp(v) for k, v in same.items() if k in PATH_PARAMETERS}
    assert state['fingerprint'] == notebook_fingerprint(
        Path(__file__).parents[1] / 'paper_figures' / '01_vqgan.ipynb', same
    )
