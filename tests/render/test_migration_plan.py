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


def test_render_says_a_sort_key_moves_off_a_column_the_migration_drops(tmp_path):
    """The round trip: placed_at (orders' sort key, NOT NULL) is dropped at the source and `dwctl import`
    drops it and the sort key from the spec. The warehouse keeps the column, nullable: the migration copies
    it, which drops it, and Redshift does not drop a sort key column (r_ALTER_TABLE). The sort key changes
    first, and render says so."""
    text = EXAMPLE.read_text(encoding="utf-8")
    render(tmp_path, text)
    dropped = (text.replace("      - {name: placed_at, type: timestamptz, nullable: false}\n", "", 1)
               .replace("    dist_key: customer_id\n    sort_keys: [placed_at]\n", "    dist_key: customer_id\n", 1))
    assert dropped.count("placed_at") == text.count("placed_at") - 2
    lines = render(tmp_path, dropped).splitlines()
    assert ("migration orders: analytics.orders: sort key (placed_at) -> AUTO, before column placed_at is dropped "
            "and added again (Redshift does not drop a column that is a key)") in lines, lines
    keyed = "    primary_key: [order_id]\n    dist_key: customer_id\n"
    sorted_by = dropped.replace(keyed, keyed + "    sort_keys: [order_id]\n", 1)
    assert sorted_by != dropped
    render(tmp_path, text)
    lines = render(tmp_path, sorted_by).splitlines()
    assert any("analytics.orders: sort key (placed_at) -> (order_id), before column placed_at" in line
               for line in lines), lines


def test_render_says_a_renamed_column_is_renamed_not_dropped_and_added(tmp_path):
    """renamed_from (issue 22, item 3): the warehouse column and its history twin are renamed, keeping their
    values; nothing is said to be dropped, and the column an exclude-list grant showed stays shown."""
    text = EXAMPLE.read_text(encoding="utf-8")
    render(tmp_path, text)
    renamed = text.replace("{name: marketing_opt_in, type: boolean, nullable: false}",
                           "{name: opt_in, type: boolean, nullable: false, renamed_from: marketing_opt_in}", 1)
    lines = render(tmp_path, renamed).splitlines()
    said = [line for line in lines if "migration" in line or "warning" in line]
    assert said == [
        "migration customers: analytics.customers: column marketing_opt_in renamed to opt_in (RENAME COLUMN: its "
        "values carry over)",
        "migration customers: analytics.customers_history: column marketing_opt_in renamed to opt_in (RENAME "
        "COLUMN: its values carry over)"], lines
    assert "migration" not in render(tmp_path, renamed), "renamed once: the spec may keep renamed_from"
