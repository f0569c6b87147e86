"""Sphinx extension: the notebooks of `nbs/` staged for myst-nb, and the repository's relative links fixed up.

**Staging.** The notebooks stay as they are (clean, no outputs). Before Sphinx looks for its sources, each one
is copied to `docs/site/nbs/` (ignored by git) with the `#|` directive lines at the top of its code cells
taken out, read the way nbdev reads them (`nbdev.process.extract_directives`), and turned into cell tags:

| directive                                  | cell tag         | on the page                                    |
|--------------------------------------------|------------------|------------------------------------------------|
| `hide`, `default_exp`, `include: false`    | `remove-cell`    | runs, not shown                                |
| `export`, `exporti`                        | `hide-input`     | runs; its source folded (the API pages show it)|
| `exports`                                  |                  | runs, shown                                    |
| `echo: false` / `output: false`            | `remove-input` / `remove-output` |                                |
| `eval: false`                              | `skip-execution` | shown, never run                               |
| a flag of settings.ini's `tst_flags` (`notest`, `slow`) | `skip-execution` | shown, not run: what `make test` (nbdev_test) skips |

Cells that call `nbdev_export(` are not run either, and a notebook whose front matter says `skip_exec: true`
not at all, as in nbdev_test. A staged copy is rewritten only when its content changes, so Sphinx's
incremental build and myst-nb's execution cache (keyed by the code cells and their tags) see the same
notebook as before.

**Execution.** With myst-nb's `nb_execution_mode = "cache"`, the staged notebooks that the execution cache
(jupyter-cache) does not hold yet are executed here, before Sphinx reads them, `nbdev_exec_workers` at a
time (as `nbdev_test --n_workers` does), each in its own kernel with myst-nb's per-cell timeout, and their
outputs put in the cache; myst-nb then takes every notebook from the cache. A notebook that fails stops the
build with its name and the failing cell's error (which Sphinx's parallel reader would not show).

**Links.** The site keeps the repository's layout (`nbs/NN_name`, `docs/findings`, ...), so most relative
links of the README, the records and the notebooks resolve as they are. The rest are rewritten, in the staged
notebooks and in files pulled in by MyST's `{include}` (the `include-read` event): a link to a file that is a
page of the site points to that page from where it is shown (README.md is written for the repository's root,
and so is `nbs/index.ipynb`, its source); an image points to the file itself (Sphinx copies it); a link to
any other file of the repository (a CSV, a script) points to that file on GitHub.
"""

from __future__ import annotations

import concurrent.futures
import configparser
import json
import os
import re
import time
import traceback
from pathlib import Path
from urllib.parse import unquote

import nbformat
import yaml
from nbdev.process import extract_directives
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

HIDE = {'hide', 'default_exp'}
FOLD = {'export', 'exporti'}
_ANSI = re.compile(r'\x1b\[[0-9;]*m')
IMAGES = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'}
DEFAULT_KERNEL = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}


# -- directives → tags ----------------------------------------------------------------------------------------
def _off(direcs: dict, key: str) -> bool:
    "Whether a quarto-style directive (`#| key: false`, which nbdev keys as 'key:') is false."
    return str((direcs.get(f'{key}:') or [''])[0]).lower() == 'false'


def cell_tags(direcs: dict, skip_flags: set[str]) -> list[str]:
    "The myst-nb tags for a code cell with nbdev directives `direcs` (as `extract_directives` returns them)."
    tags = []
    if HIDE & direcs.keys() or _off(direcs, 'include'):
        tags.append('remove-cell')
    else:
        if FOLD & direcs.keys():
            tags.append('hide-input')
        if _off(direcs, 'echo'):
            tags.append('remove-input')
        if _off(direcs, 'output'):
            tags.append('remove-output')
    if _off(direcs, 'eval') or skip_flags & direcs.keys():
        tags.append('skip-execution')
    return tags


def _front_matter_skip_exec(nb) -> bool:
    "nbdev's `skip_exec: true` in a front-matter cell (`---` yaml `---`) at the top of the notebook."
    parts = nb.cells[0].source.split('---') if nb.cells else []
    if len(parts) < 3 or parts[0].strip():
        return False
    try:
        front = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError:
        return False
    return isinstance(front, dict) and str(front.get('skip_exec', '')).lower() == 'true'


# -- links ----------------------------------------------------------------------------------------------------
class Site:
    "Where the repository's files are on the site: the Sphinx source folder mirrors the repository's layout."

    def __init__(self, repo: Path, srcdir: Path):
        cfg = configparser.ConfigParser(delimiters=['='])
        cfg.read(repo / 'settings.ini', encoding='utf-8')
        self.settings = cfg['DEFAULT']
        self.repo, self.srcdir = repo.resolve(), srcdir.resolve()
        self.nbs = self.repo / self.settings.get('nbs_path', 'nbs')
        self.readme_nb = self.settings.get('readme_nb', 'index.ipynb')
        self.github = f"{self.settings['git_url'].rstrip('/')}/blob/{self.settings.get('branch', 'main')}"

    def target(self, target: str, base: Path, doc_dir: Path) -> str:
        "The link `target` written in a file of folder `base`, as seen from a page in `doc_dir` (both real)."
        if re.match(r'^[A-Za-z][\w+.-]*:', target) or target.startswith(('#', '/')):
            return target  # a URL, an anchor of the same page, or a path from the site's root
        path, hash_, frag = target.partition('#')
        real = Path(os.path.normpath(base / unquote(path)))
        try:
            rel = real.relative_to(self.repo)
        except ValueError:
            return target
        mirror = self.srcdir / rel
        if real.suffix.lower() in IMAGES and real.is_file():
            new = real  # Sphinx copies an image from wherever it is
        elif rel == Path('README.md'):
            new = self.srcdir / 'index.md'
        elif mirror.is_file() or (real.parent == self.nbs and real.suffix == '.ipynb' and real.is_file()):
            new = mirror  # a page of the site (notebooks are staged under the same name)
        elif real.exists():
            return f"{self.github}/{rel.as_posix()}{hash_}{frag}"
        else:
            return target  # broken in the repository too: left for Sphinx to report
        return os.path.relpath(new, doc_dir).replace(os.sep, '/') + hash_ + frag

    _MD = re.compile(r'(\]\(\s*<?)([^)\s>]+)')  # [text](target) and ![alt](target)
    _REF = re.compile(r'^(\s*\[[^\]]+\]:\s*<?)(\S+?)(>?\s*$)', re.M)  # [label]: target
    _HTML = re.compile(r'(\b(?:src|href)\s*=\s*")([^"]+)')

    def fix(self, text: str, base: Path, doc_dir: Path) -> str:
        "Markdown text written in folder `base`, with its relative links made right for a page in `doc_dir`."
        def sub(m):
            return m.group(1) + self.target(m.group(2), base, doc_dir) + ''.join(m.groups()[2:])

        for pattern in (self._MD, self._REF, self._HTML):
            text = pattern.sub(sub, text)
        return text


# -- staging --------------------------------------------------------------------------------------------------
def stage_notebook(src: Path, site: Site, dest: Path) -> nbformat.NotebookNode:
    "The notebook at `src` as it is staged into `dest` (see the module's docstring)."
    skip_flags = set(site.settings.get('tst_flags', '').split())
    nb = nbformat.read(src, as_version=4)
    base = site.repo if src.name == site.readme_nb else src.parent  # the README's source links from the root
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            cell.source = site.fix(cell.source, base, dest)
        if cell.cell_type != 'code':
            continue
        direcs = extract_directives(cell, remove=True)
        # nbdev leaves quarto-style lines (`#| eval: false`) in the source for quarto: take them out too
        cell.source = ''.join(ln for ln in cell.source.splitlines(True) if not ln.lstrip().startswith('#|'))
        tags = [*cell.metadata.get('tags', []), *cell_tags(direcs, skip_flags)]
        if 'nbdev_export(' in cell.source:  # nbdev_test does not run these
            tags.append('skip-execution')
        if tags:
            cell.metadata['tags'] = list(dict.fromkeys(tags))
    nb.metadata.setdefault('kernelspec', DEFAULT_KERNEL)  # nbdev_clean may have left none
    if _front_matter_skip_exec(nb):
        nb.metadata['mystnb'] = {'execution_mode': 'off'}
    return nb


def stage_all(site: Site, dest: Path) -> list[str]:
    "Stage every notebook of the repository's `nbs_path` into `dest`; the names of those that changed."
    nbs = sorted(site.nbs.glob('*.ipynb'))
    dest.mkdir(parents=True, exist_ok=True)
    changed = []
    for src in nbs:
        nb = stage_notebook(src, site, dest)
        text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + '\n'
        out = dest / src.name
        if not out.exists() or out.read_text(encoding='utf-8') != text:
            out.write_text(text, encoding='utf-8')
            changed.append(src.name)
    keep = {p.name for p in nbs}
    for old in dest.glob('*.ipynb'):  # a notebook removed from nbs/ leaves the site
        if old.name not in keep:
            old.unlink()
            changed.append(old.name)
    return changed


# -- execution ----------------------------------------------------------------------------------------------
def _execute(path: str, timeout: int) -> tuple[str, str | None, float, float, str | None]:
    "Run the notebook at `path` in its folder: (path, the executed notebook, seconds, slowest cell's, error)."
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    start = time.time()
    try:
        res = single_nb_execution(nb, str(Path(path).parent), timeout, allow_errors=False, record_timing=True)
    except Exception:  # a dead kernel, say: still a failure of this notebook, by name
        return path, None, time.time() - start, 0.0, traceback.format_exc()
    slowest = 0.0
    for cell in nb.cells:  # cell timings read, then dropped: the cache keys on the cells' metadata
        t = cell.get('metadata', {}).pop('execution', None) or {}
        if 'shell.execute_reply' in t and 'iopub.execute_input' in t:
            slowest = max(slowest, _seconds(t['shell.execute_reply']) - _seconds(t['iopub.execute_input']))
    return path, (None if res.err else nbformat.writes(nb)), res.time, slowest, res.exc_string


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace('Z', '+00:00')).timestamp()


def execute_outdated(
    paths: list[Path], cache_path: str, timeout: int, workers: int, raise_on_error: bool = True
) -> None:
    "Execute the notebooks at `paths` that the jupyter-cache at `cache_path` lacks, and cache them."
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(cache_path)
    todo = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if nb.metadata.get('mystnb', {}).get('execution_mode') == 'off':
            continue
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            todo.append(str(path))
    if not todo:
        logger.info('[nbdev_stage] every notebook is in the execution cache')
        return
    logger.info(f'[nbdev_stage] executing {len(todo)} notebooks, {workers} at a time: {[Path(p).name for p in todo]}')
    failed, start = [], time.time()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for fut in concurrent.futures.as_completed([pool.submit(_execute, p, timeout) for p in todo]):
            path, text, seconds, slowest, error = fut.result()
            name = Path(path).name
            if text is None:
                error = _ANSI.sub('', error or '')
                failed.append(f'{name}:\n{error}')
                logger.warning(f'[nbdev_stage] {name} FAILED after {seconds:.0f} s: {error.strip().splitlines()[-1]}')
                continue
            logger.info(f'[nbdev_stage] executed {name} in {seconds:.1f} s (slowest cell {slowest:.1f} s)')
            nb = nbformat.reads(text, as_version=4)
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, path, data={'execution_seconds': seconds}), check_validity=False, overwrite=True
            )
    logger.info(f'[nbdev_stage] executed {len(todo) - len(failed)} notebooks in {time.time() - start:.0f} s')
    if failed and raise_on_error:
        names = ', '.join(f.split(':', 1)[0] for f in failed)
        raise ExtensionError(f'notebooks failed to execute: {names}\n\n' + '\n\n'.join(failed))


# -- Sphinx ---------------------------------------------------------------------------------------------------
def _on_config_inited(app: Sphinx, config: Config) -> None:
    app._nbdev_site = site = Site(Path(config.nbdev_repo_root), Path(app.srcdir))
    dest = site.srcdir / config.nbdev_stage_dir
    changed = stage_all(site, dest)
    logger.info(f'[nbdev_stage] notebooks staged, {len(changed)} changed: {", ".join(changed) or "none"}')
    if config.nb_execution_mode == 'cache':
        execute_outdated(
            sorted(dest.glob('*.ipynb')),
            config.nb_execution_cache_path,
            config.nb_execution_timeout,
            config.nbdev_exec_workers,
            config.nb_execution_raise_on_error,  # when false, myst-nb runs a failing notebook again and shows its error
        )


def _on_include_read(app: Sphinx, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    site: Site = app._nbdev_site
    included = Path(os.path.normpath(site.srcdir / relative_path))
    doc_dir = (site.srcdir / app.env.docname).parent
    content[0] = site.fix(content[0], included.parent, doc_dir)


def setup(app: Sphinx) -> dict:
    app.add_config_value('nbdev_repo_root', '..', 'env')
    app.add_config_value('nbdev_stage_dir', 'nbs', 'env')
    app.add_config_value('nbdev_exec_workers', 2, '')
    app.connect('config-inited', _on_config_inited)
    app.connect('include-read', _on_include_read)
    return {'version': '0.1', 'parallel_read_safe': True, 'parallel_write_safe': True}
