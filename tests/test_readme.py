"The README is a front door: short, citable, and in the order a newcomer reads it."

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
SECTIONS = ['## Install', '## Quick start', '## Your own VQGM', '## Reading order', "## The paper's claims"]


def test_readme_is_short():
    assert len(README) <= 10_000, (
        f"README.md has {len(README)} characters; at most 10,000 (run history: docs/)"
    )


def test_readme_cites_the_paper():
    assert '2506.00698' in README and '@inproceedings{' in README and 'ICML 2025' in README


def test_readme_sections_come_in_order():
    at = [README.find(s) for s in SECTIONS]
    assert -1 not in at, [s for s, i in zip(SECTIONS, at) if i == -1]
    assert at == sorted(at), f"sections out of order: {SECTIONS}"
    assert README.find('@inproceedings{') < at[0]  # what CORTEX is, and how to cite it, come first


def test_readme_walk_goes_through_the_front_door():
    walk = README[README.find('## Quick start') : README.find('## Your own VQGM')]
    assert 'import cortex_nb as cx' in walk
    assert 'cx.explain_concepts(' in walk and 'cx.concept_level_masking(' in walk
