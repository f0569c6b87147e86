"""Wall time of the tiny reproduction on the shipped world VQGM: cold (empty cache), warm (same cache), one replicate.

    .venv/bin/python bench/reproduce_time.py [--seed 1] [--out bench_out]

Cold: `cortex-nb reproduce --preset tiny` into a fresh folder with an empty artifact cache, as a fresh clone
runs it. Warm: the same command again with that cache (every notebook re-executed, `--force`, so that what is
timed is reading the cached artifacts, not skipping notebooks). Replicate: `--seed N` with that cache, which
shares nothing downstream of the VQGM with seed 0. The targets (issue 23) are cold <= 15 min, warm <= 2 min and
one replicate seed <= 12 min on 2 CPU cores; the numbers are measured, never asserted in tests.
`--only-replicate --cache DIR` times one replicate seed alone on the cache of a finished seed-0 run.
"""

import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_MIN = {'cold': 15, 'warm': 2, 'replicate': 12}


def timed(label: str, out: Path, cache: Path, *args: str) -> dict:
    "Run one reproduction; its wall time in minutes and whether it succeeded."
    t0 = time.time()
    proc = subprocess.run(
        [
            str(BIN / 'cortex-nb'),
            'reproduce',
            '--preset',
            'tiny',
            '--out',
            str(out),
            '--cache-dir',
            str(cache),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    minutes = (time.time() - t0) / 60
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
    row = {
        'run': label,
        'minutes': round(minutes, 2),
        'target_minutes': TARGET_MIN[label],
        'ok': proc.returncode == 0,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        '--seed', type=int, default=1, help='the replicate seed to time (not 0: it would share caches)'
    )
    ap.add_argument(
        '--out', default=None, help='folder for the runs and bench.json (default: a temporary one)'
    )
    ap.add_argument('--skip-replicate', action='store_true')
    ap.add_argument(
        '--only-replicate',
        action='store_true',
        help='time one replicate seed alone, on the cache of a finished seed-0 run (--cache)',
    )
    ap.add_argument('--cache', default=None, help='with --only-replicate: the cache of a finished seed-0 run')
    args = ap.parse_args()
    if args.only_replicate and not args.cache:
        ap.error('--only-replicate needs --cache: the artifact cache of a finished seed-0 run')
    root = Path(args.out or tempfile.mkdtemp(prefix='cortex_nb_bench_')).resolve()
    cache = Path(args.cache).resolve() if args.cache else root / 'cache'
    rows = []
    if not args.only_replicate:
        rows += [timed('cold', root / 'cold', cache), timed('warm', root / 'warm', cache, '--force')]
    if not args.skip_replicate:
        rows.append(timed('replicate', root / f'seed{args.seed}', cache, '--seed', str(args.seed)))
    from cortex_nb.core import machine_description

    (root / 'bench.json').write_text(json.dumps({'machine': machine_description(), 'runs': rows}, indent=2))
    print(f"written {root / 'bench.json'}")
    return 0 if all(r['ok'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
