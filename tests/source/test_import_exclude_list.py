"""`dwctl import` and a table-level `exclude:` list, against a real PostgreSQL: the list keeps naming only
columns the table has (a name the table lacks is an error at load), so a column dropped at the source leaves it."""

from __future__ import annotations

from dwctl.spec.read import load_spec
from tests.support.cli import run
from tests.support.minispec import write_spec


def test_a_column_dropped_at_the_source_leaves_the_exclude_list(pg_logical, tmp_path):
    pg_logical.create_database("excl", "CREATE TABLE people (id bigint PRIMARY KEY, name text, email text, phone text);")
    dsn = pg_logical.dsn(db="excl")
    spec = write_spec(tmp_path, "postgres", "excl")
    assert run("import", "--dsn", dsn, "-c", str(spec), "--tables", "people").exit_code == 0
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("    primary_key: [id]", "    primary_key: [id]\n    exclude: [email, phone]"),
                    encoding="utf-8")
    assert [c.name for c in load_spec(spec).table("people").columns if c.exclude] == ["email", "phone"]

    pg_logical.execute("ALTER TABLE people DROP COLUMN phone", db="excl")
    done = run("import", "--dsn", dsn, "-c", str(spec), "--tables", "people")
    assert done.exit_code == 0, done.output
    assert "exclude: [email]" in spec.read_text(encoding="utf-8")
    assert load_spec(spec).table("people").column_names == ["id", "name"]

    pg_logical.execute("ALTER TABLE people DROP COLUMN email", db="excl")
    done = run("import", "--dsn", dsn, "-c", str(spec), "--tables", "people")
    assert done.exit_code == 0, done.output
    assert "exclude:" not in spec.read_text(encoding="utf-8")
    assert load_spec(spec).table("people").column_names == ["id", "name"]
