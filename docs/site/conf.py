# Sphinx configuration of the cortex_nb documentation site (`make docs` → _site/).
#
# Why Sphinx + myst-nb rather than mkdocs-jupyter: autodoc/autosummary build the API reference from the
# docstrings and intersphinx links our signatures to Python's, NumPy's and PyTorch's own docs; myst-nb
# executes the notebooks through jupyter-cache, so a rebuild re-runs only the notebooks whose code changed;
# and Sphinx is the scientific-Python ecosystem's standard (NumPy, SciPy, PyTorch, matplotlib), so readers
# and contributors know it. mkdocs-jupyter renders notebooks but has no execution cache and no autodoc.
#
# Layout: the notebooks of nbs/ are staged with their nbdev directives as cell tags into docs/site/nbs/
# (`_ext/nbdev_stage.py`; ignored by git); README.md, docs/findings.md and docs/replicates.md are included,
# not copied, by index.md and docs/*.md here, which keep the repository's layout so that the README's
# relative links (docs/..., nbs/....ipynb) resolve on the site as they do on GitHub.

import os
import re
import sys
from configparser import ConfigParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE / '_ext'))
sys.path.insert(0, str(ROOT))

_ini = ConfigParser(delimiters=['='])
_ini.read(ROOT / 'settings.ini', encoding='utf-8')
_cfg = _ini['DEFAULT']

project = _cfg['lib_name']
author = _cfg['author']
copyright = _cfg['copyright']
release = version = _cfg['version']

extensions = [
    'myst_nb',
    'sphinx.ext.autodoc',
    'sphinx.ext.autosummary',
    'sphinx.ext.intersphinx',
    'sphinx.ext.viewcode',
    'nbdev_stage',
]

nbdev_repo_root = str(ROOT)
nbdev_stage_dir = 'nbs'
nbdev_exec_workers = int(os.environ.get('CORTEX_DOCS_WORKERS', 2))  # notebooks run side by side, as nbdev_test's

exclude_patterns = ['**/.ipynb_checkpoints', '_ext', '_templates']
templates_path = ['_templates']
source_suffix = {'.rst': 'restructuredtext', '.md': 'myst-nb', '.ipynb': 'myst-nb'}

# -- notebooks: executed during the build, outputs cached by jupyter-cache in _build/ -------------------------
nb_execution_mode = 'cache'
nb_execution_cache_path = str(ROOT / '_build' / 'jupyter_cache')
# per cell, in seconds: the slowest cells take about 100 s on two busy cores (07a_world_release, index)
nb_execution_timeout = int(os.environ.get('CORTEX_DOCS_CELL_TIMEOUT', 600))
nb_execution_raise_on_error = True  # a notebook that errors fails the build, naming it
nb_execution_show_tb = True
nb_merge_streams = True
# figures: the kernel inherits this process's environment; MPLBACKEND=Agg (CI's) would drop every figure
os.environ['MPLBACKEND'] = 'module://matplotlib_inline.backend_inline'

myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'deflist']
myst_heading_anchors = 6  # GitHub-style heading slugs: the `#...` links of findings.md work on the site

# -- API reference: autosummary over the modules cortex_nb exports (nbdev's `__all__`) -------------------------
autosummary_generate = True
autosummary_ignore_module_all = True  # the modules of the package; autodoc still documents each `__all__`
autodoc_default_options = {'members': True, 'undoc-members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_preserve_defaults = True
default_role = 'code'  # nbdev docstrings write `name` for code

# the build runs offline: intersphinx links to Python's, NumPy's, PyTorch's and pandas' docs only where the
# inventories can be fetched (DOCS_INTERSPHINX=1, as the Pages workflow sets)
intersphinx_mapping = (
    {
        'python': ('https://docs.python.org/3', None),
        'numpy': ('https://numpy.org/doc/stable', None),
        'torch': ('https://docs.pytorch.org/docs/stable', None),
        'pandas': ('https://pandas.pydata.org/docs', None),
    }
    if os.environ.get('DOCS_INTERSPHINX') == '1'
    else {}
)

# -- HTML ----------------------------------------------------------------------------------------------------
html_theme = 'furo'
html_title = f'{project} {release}'
html_copy_source = False
html_show_sourcelink = False
html_static_path = []

suppress_warnings = ['mystnb.unknown_mime_type']  # widget outputs (tqdm) have no static rendering


# -- nbdev docstrings are Markdown, autodoc reads reST: keep their `code`, and their *, | and _ as text -------
_CODE_SPAN = re.compile(r'(``[^`]+``|`[^`]+`)')
_OPENS_AFTER = set(' \t\'"([{<-/:')
_CLOSES_BEFORE = set(' \t\'")]}>-/:.,;!?')


def markdown_docstring_line(line: str) -> str:
    "One docstring line, Markdown, as reST: code spans set off from the letters around them, markup escaped."
    if line.lstrip().startswith(('>>>', '...')):  # a doctest is literal
        return line
    parts = _CODE_SPAN.split(line)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a code span: reST needs a space or punctuation on both sides
            before, after = parts[i - 1][-1:], (parts[i + 1][:1] if i + 1 < len(parts) else '')
            out.append(
                ('\\ ' if before and before not in _OPENS_AFTER else '')
                + part
                + ('\\ ' if after and after not in _CLOSES_BEFORE else '')
            )
        else:
            bullet = re.match(r'\s*[*-] ', part) if i == 0 else None
            head, rest = (part[: bullet.end()], part[bullet.end() :]) if bullet else ('', part)
            out.append(head + re.sub(r'([*|]|_(?=\W|$))', r'\\\1', rest))
    return ''.join(out)


def _markdown_docstring(app, what, name, obj, options, lines):
    lines[:] = [markdown_docstring_line(line) for line in lines]


def setup(app):
    app.connect('autodoc-process-docstring', _markdown_docstring)
