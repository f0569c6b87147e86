"""The core install (`pip install cortex_nb`, no extras) is enough for the method.

A child process refuses to import every package that only an extra installs (an import hook on
`sys.meta_path`), as if they were not installed, then imports the flat API (`import cortex_nb as cx`) and
every module of the package, and calls the loaders that need an extra: each must raise an ImportError
that names the extra to install. The extras themselves come from settings.ini, as setup.py reads them.
"""

import configparser, json, re, shlex, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# import names of the packages the core install leaves out: the extras' own and what they bring along
REFUSED = (
    'taming', 'omegaconf', 'einops', 'torchvision', 'timm', 'torchmetrics', 'pytorch_lightning', 'lightning',
    'lightning_utilities', 'huggingface_hub', 'yaml', 'min_dalle', 'emoji', 'requests', 'papermill',
    'ipykernel', 'nbformat', 'nbclient', 'jupyter_client', 'traitlets', 'IPython', 'ipywidgets', 'seaborn',
    'nbdev', 'execnb', 'fastcore', 'ghapi', 'nbconvert', 'jupytext', 'pytest', 'sphinx', 'myst_nb',
    'selenium',
)  # fmt: skip

CHILD = r'''
import contextlib, importlib, importlib.abc, io, json, pkgutil, sys, tempfile, traceback

REFUSED = set(sys.argv[1].split(','))
preloaded = sorted(m for m in sys.modules if m.partition('.')[0] in REFUSED)


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the core install)", name=name)


sys.meta_path.insert(0, Refuse())
report = {'preloaded': preloaded, 'modules': {}, 'names': {}, 'extras': {}}


def error(fn):
    "The text of what fn() raised: 'ImportError: ...', or None if it did not raise."
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            value = fn()
    except BaseException as e:
        return f"{type(e).__name__}: {e}"
    return value if isinstance(value, str) else None


try:
    import cortex_nb as cx
except BaseException:
    report['import'] = traceback.format_exc()
    print(json.dumps(report))
    sys.exit(0)
report['all'] = list(getattr(cx, '__all__', []))
for name in report['all'] + ['TokenImportance', 'explain_concepts', 'audit_bias']:
    report['names'][name] = error(lambda: getattr(cx, name) and None)
for m in pkgutil.iter_modules(cx.__path__):
    report['modules'][m.name] = error(lambda: importlib.import_module(f'cortex_nb.{m.name}') and None)


def cli_reproduce():
    from cortex_nb.cli import main

    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(['reproduce', '--preset', 'tiny', '--out', d])
    return f"exit {code}: {err.getvalue()}"


def world_tokenizer():
    from cortex_nb.tokenizer import TokenizerConfig, VQTokenizer

    VQTokenizer(TokenizerConfig())


def world_evaluator():
    from cortex_nb.evaluators import EvaluatorConfig, build_evaluator_model

    build_evaluator_model(EvaluatorConfig(arch='cnn'))


def taming_loader():
    from cortex_nb.taming import load_taming_vqgan

    load_taming_vqgan('nowhere/config.yaml', 'nowhere/last.ckpt')


def min_dalle_loader():
    from cortex_nb.text_to_image import load_min_dalle

    load_min_dalle('nowhere')


for name, fn in [('taming', taming_loader), ('dalle', min_dalle_loader), ('tokenizer', world_tokenizer),
                 ('evaluator', world_evaluator), ('reproduce', cli_reproduce)]:
    report['extras'][name] = error(fn)
print(json.dumps(report))
'''


@pytest.fixture(scope='module')
def core():
    "What the child process saw, with every extra's packages refused."
    proc = subprocess.run(
        [sys.executable, '-c', CHILD, ','.join(REFUSED)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report['preloaded'], f"imported before the hook was in place: {report['preloaded']}"
    assert 'import' not in report, f"`import cortex_nb` needs an extra:\n{report.get('import')}"
    return report


def test_every_module_imports_without_the_extras(core):
    failed = {m: e for m, e in core['modules'].items() if e}
    assert not failed, f"modules that need an extra at import: {failed}"


def test_the_flat_api_resolves_without_the_extras(core):
    # needs nbs/20_api.ipynb's `cortex_nb/__init__.py` (the flat API and its __all__)
    for name in ('TokenImportance', 'explain_concepts', 'audit_bias'):
        assert core['names'][name] is None, f"cx.{name}: {core['names'][name]}"
        assert name in core['all'], f"{name} is not in cortex_nb.__all__"
    failed = {n: e for n, e in core['names'].items() if e}
    assert not failed, f"names of cortex_nb.__all__ that do not resolve: {failed}"


@pytest.mark.parametrize(
    'what, extra, package',
    [
        ('taming', 'paper', 'omegaconf'),  # the config is read first, then taming builds the model
        ('dalle', 'dalle', 'min-dalle'),
        ('tokenizer', 'paper', 'taming-transformers-rom1504'),
        ('evaluator', 'paper', 'timm'),
        ('reproduce', 'notebooks', 'papermill'),
    ],
)
def test_a_loader_that_needs_an_extra_names_it(core, what, extra, package):
    said = core['extras'][what]
    assert said and f"pip install 'cortex_nb[{extra}]'" in said and package in said, said


def _settings_extras() -> dict[str, set[str]]:
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return {
        key[: -len('_requirements')]: {re.split(r'[<>=!~;\[ ]', r)[0].lower() for r in shlex.split(value)}
        for key, value in cfg['DEFAULT'].items()
        if key.endswith('_requirements') and key not in ('pip_requirements', 'conda_requirements')
    }


def test_the_import_errors_name_the_extras_setup_py_installs():
    from cortex_nb.core import EXTRAS

    extras = _settings_extras()
    for module, (package, extra) in EXTRAS.items():
        assert extra in extras, f"EXTRAS sends {module} to [{extra}], which settings.ini does not define"
    for extra in ('paper', 'dalle', 'notebooks'):
        named = {package for package, e in EXTRAS.values() if e == extra}
        missing = extras[extra] - named
        assert not missing, f"settings.ini's [{extra}] packages {missing} are not in cortex_nb.core.EXTRAS"


def test_the_core_requirements_are_only_what_the_method_needs():
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    core = {re.split(r'[<>=!~;\[ ]', r)[0].lower() for r in shlex.split(cfg['DEFAULT']['requirements'])}
    want = {'torch', 'numpy', 'scipy', 'pandas', 'captum', 'safetensors', 'tqdm', 'matplotlib'}
    assert core == want, f"core requirements {sorted(core)}; the method needs {sorted(want)}"
