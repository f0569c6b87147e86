"""The documentation site: `make docs` builds it into _site/, and headless Chromium finds its pages whole.

The site is built once per test session by `make docs` (a warm build re-runs no notebook: myst-nb's
execution cache in _build/), served from _site/ on localhost, and opened in Debian's chromium through
chromedriver (selenium). Screenshots of the pages checked go to _site_screenshots/ (a build artifact)."""

import functools
import http.server
import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / '_site'
SHOTS = ROOT / '_site_screenshots'
# Debian's chromium; GitHub's runners have Google Chrome; $CHROMIUM / $CHROMEDRIVER name others
CHROMIUM = (
    os.environ.get('CHROMIUM')
    or shutil.which('chromium')
    or shutil.which('google-chrome')
    or '/usr/bin/chromium'
)
CHROMEDRIVER = os.environ.get('CHROMEDRIVER') or shutil.which('chromedriver') or '/usr/bin/chromedriver'
INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver  (Debian; .ci/run does this)'
# notebook pages whose outputs hold matplotlib figures
FIGURE_PAGES = ['nbs/01_world.html', 'nbs/16_editing.html', 'nbs/18_bias_audit.html']


def _tail(text: str, n: int = 60) -> str:
    return '\n'.join(text.splitlines()[-n:])


@pytest.fixture(scope='session')
def chromium_paths():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.fail(
            f'the docs site test drives headless Chromium; {missing} missing: install with\n  {INSTALL}'
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail('selenium is missing: `make docs` installs docs/requirements.txt into the venv')
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope='session')
def site():
    "_site/, built by `make docs` once per test session."
    res = subprocess.run(['make', 'docs'], cwd=ROOT, capture_output=True, text=True)
    out = res.stdout + res.stderr
    failed = [line for line in out.splitlines() if 'FAILED after' in line]  # the notebooks, by name
    assert res.returncode == 0, 'make docs failed:\n' + '\n'.join(failed) + '\n...\n' + _tail(out)
    assert (SITE / 'index.html').is_file()
    return SITE


@pytest.fixture(scope='session')
def base_url(site):
    "_site/ served over HTTP on localhost, as GitHub Pages serves it."

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}/'
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='session')
def browser(chromium_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_paths
    profile = tempfile.mkdtemp(prefix='docs-chromium-')
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--window-size=1280,1600',
        f'--user-data-dir={profile}',
    ):
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    SHOTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(browser, url: str):
    "Load `url`; the console errors it caused: the site's own files that failed to load, and script errors."
    browser.get_log('browser')  # drop what earlier pages left
    browser.get(url)
    browser.execute_async_script(  # loaded, then two frames painted
        "const done = arguments[0], paint = () => requestAnimationFrame(() => requestAnimationFrame(done));"
        "if (document.readyState === 'complete') paint(); else window.addEventListener('load', paint);"
    )
    origin = '{0.scheme}://{0.netloc}/'.format(urlsplit(url))
    return [
        e
        for e in browser.get_log('browser')
        if e['level'] == 'SEVERE'
        and 'favicon.ico' not in e['message']
        # MathJax comes from its CDN, as Sphinx links it: offline (this sandbox, CI) it cannot load
        and not (e['source'] == 'network' and not e['message'].startswith(origin))
    ]


_IMAGES_STATE = """
const imgs = Array.from(document.querySelectorAll(arguments[0]));
return Promise.all(imgs.map(img => { img.scrollIntoView(); img.loading = 'eager';
    return img.decode().catch(() => null); }))
  .then(() => imgs.map(img => [img.getAttribute('src'), img.complete, img.naturalWidth]));
"""


def _images(browser, selector: str):
    "(src, complete, naturalWidth) of each image matching `selector`, once each has loaded or failed."
    return browser.execute_script(_IMAGES_STATE, selector)


def _screenshot(browser, path: Path, at: str | None = None):
    "The window at the top of the page, or around the first element matching `at`, once painted again."
    # (a whole window each time: after an element screenshot, headless Chromium paints later pages blank)
    browser.execute_async_script(
        "const done = arguments[1], el = arguments[0] && document.querySelector(arguments[0]);"
        "if (el) el.scrollIntoView({block: 'center', behavior: 'instant'});"  # furo scrolls smoothly
        "else window.scrollTo({top: 0, behavior: 'instant'});"
        "requestAnimationFrame(() => requestAnimationFrame(done));",
        at,
    )
    browser.save_screenshot(str(path))


def test_home_page_is_the_readme(base_url, browser):
    errors = _open(browser, base_url)
    assert not errors, errors
    assert 'cortex_nb' in browser.title
    article = browser.find_element('css selector', 'article').text
    readme_start = (ROOT / 'README.md').read_text().split('\n## ')[1].split('\n')[0]  # its first section
    assert readme_start in article, f'the home page does not show the README (no section {readme_start!r})'
    images = _images(browser, 'article img')
    assert images and all(w > 0 for _, _, w in images), f'README images that did not load: {images}'
    _screenshot(browser, SHOTS / 'home.png')
    nav = [a.get_attribute('href') for a in browser.find_elements('css selector', '.sidebar-tree a')]
    for page in FIGURE_PAGES + ['docs/findings.html', 'api.html']:
        assert base_url + page in nav, f'{page} is not in the navigation'


@pytest.mark.parametrize('page', FIGURE_PAGES)
def test_notebook_page_renders_with_figures(base_url, browser, page):
    errors = _open(browser, base_url + page)
    assert not errors, errors
    title = browser.find_element('css selector', 'article h1').text
    assert title, f'{page} has no title'
    cells = browser.find_elements('css selector', 'div.cell')
    assert len(cells) >= 5, f'{page} shows {len(cells)} code cells'
    text = browser.find_element('css selector', 'article').text
    for hidden in ('#|', 'default_exp', 'Traceback (most recent call last)'):
        assert hidden not in text, f'{page} shows {hidden!r}'
    figures = _images(browser, 'div.cell_output img')
    loaded = [src for src, done, width in figures if done and width > 0]
    assert loaded, f'{page}: no figure image loaded ({figures})'
    name = Path(page).stem
    _screenshot(browser, SHOTS / f'{name}.png')
    _screenshot(browser, SHOTS / f'{name}-figure.png', at='div.cell_output img')


class _Links(HTMLParser):
    "The link targets (href, src) and the anchors (id, name) of one HTML page."

    def __init__(self):
        super().__init__()
        self.links, self.anchors = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ('id', 'name') if tag != 'meta' else ():
            if attrs.get(key):
                self.anchors.add(attrs[key])
        for key in ('href', 'src'):
            if attrs.get(key):
                self.links.append((tag, attrs[key]))


def test_no_internal_link_is_broken(base_url):
    "Every HTML page of _site/, every href/src to the site itself: the target loads, and its #anchor exists."
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob('*.html'))
    assert len(pages) > 40, pages
    fetched = {}  # url → (status, anchors or None)

    def fetch(url):
        if url not in fetched:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    kind = r.headers.get_content_type()
                    body = r.read()
                parser = None
                if kind == 'text/html':
                    parser = _Links()
                    parser.feed(body.decode('utf-8', 'replace'))
                fetched[url] = (200, parser)
            except urllib.error.HTTPError as e:
                fetched[url] = (e.code, None)
        return fetched[url]

    broken = []
    n_links = 0
    for page in pages:
        url = base_url + page
        status, parsed = fetch(url)
        assert status == 200, (page, status)
        for tag, link in parsed.links:
            target = urljoin(url, link)
            if not target.startswith(base_url):
                continue  # another site, mailto:, javascript:, data:
            n_links += 1
            doc, frag = urldefrag(target)
            status, target_page = fetch(doc)
            if status != 200:
                broken.append(f'{page}: <{tag}> {link} → HTTP {status}')
            elif frag and target_page is not None and unquote(frag) not in target_page.anchors:
                broken.append(f'{page}: <{tag}> {link} → no #{unquote(frag)} on {doc[len(base_url) :]}')
    assert n_links > 1000, n_links
    assert not broken, f'{len(broken)} broken internal links:\n' + '\n'.join(broken[:50])


def test_nbdev_directives_become_cell_tags():
    "The staging step's reading of nbdev directives (docs/site/_ext/nbdev_stage.py)."
    spec = importlib.util.spec_from_file_location('nbdev_stage', ROOT / 'docs/site/_ext/nbdev_stage.py')
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    from nbdev.process import extract_directives
    import nbformat

    def tags(source):
        return stage.cell_tags(extract_directives(nbformat.v4.new_code_cell(source)), {'notest', 'slow'})

    assert tags('#| hide\nx = 1') == ['remove-cell']
    assert tags('#| default_exp core') == ['remove-cell']
    assert tags('#| export\ndef f(): pass') == ['hide-input']
    assert tags('#| exports\ndef f(): pass') == []
    assert tags('#| eval: false\n1/0') == ['skip-execution']
    assert tags('#|eval:false\n1/0') == ['skip-execution']
    assert tags('#| notest\nx') == ['skip-execution']
    assert tags('#| slow\nx') == ['skip-execution']
    assert tags('#| hide\n#| eval: false\nx') == ['remove-cell', 'skip-execution']
    assert tags('#| echo: false\nx') == ['remove-input']
    assert tags('x = 1  #| not a directive') == []
