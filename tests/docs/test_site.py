"""The docs site builds strictly, offline, and says what the code does.

The build is MkDocs in strict mode into a temporary directory (never site/): a broken link or anchor,
or a page missing from the nav, fails it. It reads only the repository and needs no network (the
bundled readthedocs theme, highlight.js off).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dwctl.spec.model import DEFAULT_SKIPS
from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"


def mkdocs_build(project: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=project, capture_output=True, text=True, timeout=300)


def nav_pages(nav) -> list[str]:
    """Every page the nav names, in order."""
    found = []
    for entry in nav:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            found += nav_pages(value) if isinstance(value, list) else [value]
    return found


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_the_site_builds_strictly_with_every_page(tmp_path, config):
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert config["strict"] is True and config["theme"]["highlightjs"] is False
    pages = nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk  # one nav entry per page, none left out
    for page in pages:
        assert (tmp_path / "site" / page.replace(".md", ".html")).is_file(), page


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    """Strict mode is really on: a copy of the site with one bad link, then one bad anchor, does not build."""
    for bad in ("[gone](no-such-page.md)", "[gone](warehouse.md#no-such-section)"):
        project = tmp_path / bad[7:12]
        shutil.copytree(DOCS, project / "docs")
        shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
        page = project / "docs" / "day-two.md"
        page.write_text(page.read_text(encoding="utf-8") + f"\n{bad}\n", encoding="utf-8")
        built = mkdocs_build(project, tmp_path / "site")
        assert built.returncode != 0 and "no-such-" in built.stderr, built.stderr


def test_the_built_site_loads_nothing_from_the_network(tmp_path):
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    remote = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["']https?://""")
    for html in (tmp_path / "site").rglob("*.html"):
        assert not remote.search(html.read_text(encoding="utf-8")), html


def test_every_default_checkov_skip_is_documented_with_its_reason():
    """Read from the code: each default skip's id and its whole reason appear on the gates page."""
    gates = normalized((DOCS / "gates.md").read_text(encoding="utf-8"))
    for skip in DEFAULT_SKIPS:
        assert re.search(rf"\| {re.escape(skip.id)}\b[^|]*\| {re.escape(normalized(skip.reason))} \|", gates), skip.id


def test_the_readme_is_a_front_door_linking_every_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    linked = set(re.findall(r"\]\(docs/([^)#]+)\)", text))
    assert set(nav_pages(config["nav"])) - {"index.md"} <= linked
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).exists(), target
    assert "make render" in text and "make test" in text


def test_every_command_the_readme_and_docs_run_exists():
    """A `dwctl NAME` in a shell block names a real command (a renamed command would leave the docs lying)."""
    from dwctl.cli import cli

    commands = set(cli.list_commands(None))
    for path in [README, *DOCS.rglob("*.md")]:
        for block in re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            code = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in block.splitlines())  # not comments
            for name in re.findall(r"(?:^|[;&|(]\s*|\s)dwctl(?: -v+| --no-color)* ([a-z][a-z-]+)", code, re.M):
                assert name in commands, f"{path.relative_to(ROOT)}: dwctl {name}"
