"""`dwctl render` says what a spec change does to the warehouse's tables, and flags what loses data."""

from __future__ import annotations

from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE


def render(tmp_path, text: str):
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    return result.output


def test_render_lists_the_migrations_a_spec_change_implies(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace("exclude: [email, full_name, phone]", "exclude: [email, full_name]")
    first = render(tmp_path, text)
    assert "migration" not in first, "a first render has nothing to migrate from"
    assert "migration" not in render(tmp_path, text), "the same spec again: nothing"
    changed = (text.replace("      - {name: phone, type: varchar(32)}\n", "      - {name: nickname, type: varchar(40)}\n", 1)
               .replace("{name: full_name, type: varchar(200)}", "{name: full_name, type: varchar(300)}", 1)
               .replace("{name: country_code, type: char(2)}", "{name: country_code, type: char(1)}", 1))
    lines = render(tmp_path, changed).splitlines()
    assert "migration customers: analytics.customers: column nickname added (VARCHAR(160); NULL in the rows already there)" in lines
    assert "migration customers: analytics.customers: column full_name widened from VARCHAR(800) to VARCHAR(1200)" in lines
    narrow = [line for line in lines if "country_code stays" in line and "analytics.customers:" in line]
    assert narrow and narrow[0].startswith("warning: ") and "loses data" in narrow[0]
    dropped = [line for line in lines if "column phone is no longer in the spec; kept (nullable)" in line]
    assert dropped and all(line.startswith("warning: ") for line in dropped)
    assert ("warning: grant: new column customers.nickname is visible to arn:aws:iam::123456789012:role/Analyst "
            "(its grant lists excluded columns); add it to columns.exclude to hide it") in lines
