"The `cortex-nb` console script as a user runs it."

import os, subprocess, sys
from pathlib import Path

import torch, torchvision

from cortex_nb.evaluators import torchvision_checkpoint_path
from cortex_nb.taming import write_tiny_taming_checkpoint

BIN = Path(sys.executable).parent


def cortex_nb(*args, env=None):
    return subprocess.run([str(BIN / 'cortex-nb'), *map(str, args)], capture_output=True, text=True, env=env)


def test_paper_dry_run_prints_the_plan_for_an_official_format_checkpoint(tmp_path, monkeypatch):
    config, ckpt = write_tiny_taming_checkpoint(tmp_path)
    # the evaluators' pretrained weights are inputs too: a random-weight ResNet-18 where torchvision keeps the real one
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    env = dict(os.environ)
    weights = torchvision_checkpoint_path('resnet18')
    weights.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    proc = cortex_nb(
        'reproduce',
        '--preset',
        'paper',
        '--dry-run',
        '--vqgan-config',
        config,
        '--vqgan-ckpt',
        ckpt,
        '--evaluators',
        'resnet18',
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    for step in ('sample synthetic grids', 'train IEM CE', 'TIS RE', 'GPU hours'):
        assert step in proc.stdout
    # without them (the paper's four by default) the plan is printed and the missing files are named
    proc = cortex_nb(
        'reproduce', '--preset', 'paper', '--dry-run', '--vqgan-config', config, '--vqgan-ckpt', ckpt, env=env
    )
    assert (
        proc.returncode == 1
        and 'GPU hours' in proc.stdout
        and 'resnet50' in proc.stderr
        and 'Traceback' not in proc.stderr
    )


def test_paper_dry_run_names_a_missing_checkpoint(tmp_path):
    config, _ = write_tiny_taming_checkpoint(tmp_path)
    proc = cortex_nb(
        'reproduce',
        '--preset',
        'paper',
        '--dry-run',
        '--vqgan-config',
        config,
        '--vqgan-ckpt',
        tmp_path / 'gone.ckpt',
    )
    assert proc.returncode != 0 and 'gone.ckpt' in proc.stderr and 'Traceback' not in proc.stderr


def test_unknown_preset_is_refused_with_the_known_ones():
    proc = cortex_nb('reproduce', '--preset', 'huge', '--dry-run')
    assert proc.returncode == 1 and "Unknown preset 'huge'" in proc.stderr and 'tiny' in proc.stderr
