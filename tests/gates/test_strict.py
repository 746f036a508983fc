"""`dwctl validate --strict`: a skipped check fails the run; the hooks and the CI example use it, and the
hooks fire on every file dwctl reads or writes (the manifest included)."""

from __future__ import annotations

import json
import re
import shlex

import yaml
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.render.output import MANIFEST
from tests.conftest import EXAMPLE, ROOT


def test_strict_fails_when_a_check_skipped_and_says_which(tmp_path):
    root = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(EXAMPLE), "-o", str(root)]).exit_code == 0
    base = ["validate", "-c", str(EXAMPLE), "-o", str(root)]
    lenient = CliRunner().invoke(cli, [*base, "--format", "json"])
    data = json.loads(lenient.stdout)
    skipped = [c["name"] for c in data["checks"] if c["status"] == "skip"]
    assert skipped and "terraform validate" in skipped  # iac/ is not initialised here
    assert lenient.exit_code == 0 and data["ok"] is True

    strict = CliRunner().invoke(cli, [*base, "--strict", "--format", "json"])
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["ok"] is False and json.loads(strict.stdout)["strict"] is True
    text = CliRunner().invoke(cli, [*base, "--strict"])
    assert text.exit_code == 1
    assert f"strict: {len(skipped)} skipped check(s) fail the run ({', '.join(skipped)})" in text.output


def test_the_hooks_and_the_ci_example_validate_strictly():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert shlex.split(hooks["dwctl-validate"]["entry"])[:3] == ["dwctl", "validate", "--strict"]
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    runs = [shlex.split(s["run"]) for s in workflow["jobs"]["gates"]["steps"] if "dwctl validate" in s.get("run", "")]
    assert runs and all("--strict" in words for words in runs)


def test_the_hooks_fire_on_every_file_dwctl_writes(rendered):
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    written = [*rendered, MANIFEST, "config/pipeline.yaml"]
    for hook in hooks:
        pattern = re.compile(hook["files"])  # pre-commit matches with Python's re.search
        wanted = [p for p in written if hook["id"] != "dwctl-scan" or not p.startswith("sql/")]
        assert [p for p in wanted if not pattern.search(p)] == [], hook["id"]
        assert not pattern.search("README.md") and not pattern.search("docs/iac/notes.md")
