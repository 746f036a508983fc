"""The pure parts of import/doctor: DSN parsing and masking, type spelling and comparison, YAML style."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dwctl.errors import UsageError
from dwctl.source.connection import parse_dsn
from dwctl.source.introspect import mysql_type, pg_type, same_type
from dwctl.source.yaml_roundtrip import Style, guess_style, load
from dwctl.spec.type_mapping import parse_source_type
from tests.conftest import EXAMPLE


@given(st.text(min_size=6, max_size=40).filter(lambda s: "\x00" not in s))
def test_masked_dsn_never_shows_the_password(password):
    dsn = parse_dsn(f"postgresql://dms:{quote(password, safe='')}@db.example.com:5432/shop?sslmode=require")
    assert dsn.password == password
    assume(password not in "postgresql://dms:***@db.example.com:5432/shop?sslmode=require")
    assert dsn.masked() == "postgresql://dms:***@db.example.com:5432/shop?sslmode=require"
    assert password not in dsn.scrub(f"FATAL: password {password} rejected")


@pytest.mark.parametrize("text", [
    "postgresql://dms:Sec#retPass@db.example.com:5432/shop",
    "postgresql://dms:Sec/retPass@db.example.com/shop",
    "mysql://dms:Sec?retPass@db.example.com/shop",
    "mysql://dms:Sec@ret/Pass@db.example.com/shop",
    "postgresql://dms:SecretPass@db.example.com:SecretPort/shop",
    "postgresql://dms:SecretPass@[db.example.com/shop",
])
def test_a_dsn_it_cannot_read_is_refused_without_quoting_it(text):
    with pytest.raises(UsageError) as info:
        parse_dsn(text)
    message = str(info.value)
    assert "cannot read the DSN" in message
    assert "Sec" not in message and "ret" not in message and "Pass" not in message and "db.example" not in message


def test_a_password_with_at_signs_and_colons_still_parses():
    dsn = parse_dsn("postgresql://dms:p@ss:w@rd@db.example.com/shop")
    assert (dsn.user, dsn.password, dsn.host, dsn.database) == ("dms", "p@ss:w@rd", "db.example.com", "shop")


def test_dsn_parts_and_defaults():
    dsn = parse_dsn("mysql://app@10.0.0.5/shop")
    assert (dsn.family, dsn.user, dsn.password, dsn.host, dsn.port, dsn.database) == (
        "mysql", "app", None, "10.0.0.5", None, "shop")
    assert dsn.masked() == "mysql://app@10.0.0.5/shop"
    assert parse_dsn("mariadb://a:b@h:3307").family == "mysql"
    assert parse_dsn("postgres://h/db?password=hunter22").masked() == "postgres://h/db?password=***"


@pytest.mark.parametrize("text, message", [
    ("oracle://h/db", "unknown scheme oracle://"),
    ("h:5432/db", "unknown scheme"),
    ("mysql://h/db?sslmode=require", "unknown mysql option(s) sslmode"),
    ("postgresql://u:pw@h:notaport/db", "cannot read the DSN"),
    ("postgresql://h/a/b", "the path names one database"),
])
def test_bad_dsns_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_dsn(text)
    assert info.value.exit_code == 2
    assert "pw@" not in str(info.value)


@pytest.mark.parametrize("formatted, typtype, elem, spelled", [
    ("character varying(255)", "b", None, "varchar(255)"),
    ("character varying(255)[]", "b", "b", "varchar(255)[]"),
    ("character(1)", "b", None, "char(1)"),
    ("timestamp(0) with time zone", "b", None, "timestamptz(0)"),
    ("timestamp without time zone", "b", None, "timestamp"),
    ("time(3) without time zone", "b", None, "time(3)"),
    ("time with time zone", "b", None, "timetz"),
    ("interval year to month", "b", None, "interval"),
    ("numeric(12,2)[]", "b", "b", "numeric(12,2)[]"),
    ('"Mood"', "e", None, "enum"),
    ("shop.mood[]", "b", "e", "enum[]"),
    ("shop.address", "c", None, "composite"),  # DMS lands COMPOSITE as NCLOB text
    ("address[]", "b", "c", "composite[]"),
    ("public.citext", "b", None, "citext"),
    ("money", "b", None, "money"),
    ("macaddr8", "b", None, None),
    ('"char"', "b", None, None),
])
def test_postgres_spelling(formatted, typtype, elem, spelled):
    assert pg_type(formatted, typtype, elem) == spelled
    if spelled:
        parse_source_type(spelled, "postgres")


@pytest.mark.parametrize("column_type, data_type, spelled", [
    ("int(10) unsigned", "int", "int unsigned"),
    ("int(5) unsigned zerofill", "int", "int unsigned"),
    ("tinyint(1)", "tinyint", "tinyint"),
    ("bigint(20)", "bigint", "bigint"),
    ("decimal(12,2) unsigned", "decimal", "decimal(12,2) unsigned"),
    ("enum('New Order','paid')", "enum", "enum('New Order','paid')"),
    ("enum('a(1)','b')", "enum", "enum('a(1)','b')"),  # labels as COLUMN_TYPE spells them: they size the column
    ("enum('it''s','back\\\\slash')", "enum", "enum('it''s','back\\\\slash')"),
    ("year(4)", "year", "year(4)"),
    ("bit(1)", "bit", "bit(1)"),
    ("point", "point", "point"),
    ("vector(3)", "vector", None),
])
def test_mysql_spelling(column_type, data_type, spelled):
    assert mysql_type(column_type, data_type) == spelled
    if spelled:
        parse_source_type(spelled, "mysql")


@pytest.mark.parametrize("a, b, family, same", [
    ("int4", "integer", "postgres", True),
    ("character varying(20)", "varchar(20)", "postgres", True),
    ("varchar(20)", "varchar(30)", "postgres", False),
    ("timestamptz(6)", "timestamp with time zone", "postgres", True),
    ("timestamptz", "timestamp", "postgres", False),
    ("numeric", "numeric(12,2)", "postgres", False),
    ("char", "char(1)", "postgres", True),
    ("integer[]", "integer", "postgres", False),
    ("enum", "enum[]", "postgres", False),
    ("int(11)", "int", "mysql", True),
    ("int", "int unsigned", "mysql", False),
    ("enum", "enum('a','b')", "mysql", True),
    ("enum('a')", "enum('a','b')", "mysql", False),
    ("enum('it''s','x')", "enum('it''s', 'x')", "mysql", True),
    ("enum('a,b')", "enum('a','b')", "mysql", False),
    ("decimal", "decimal(10,0)", "mysql", True),
    ("datetime(3)", "datetime", "mysql", False),
])
def test_same_type(a, b, family, same):
    assert same_type(a, b, family) is same
    assert same_type(b, a, family) is same


def test_the_example_spec_round_trips_byte_for_byte():
    text = EXAMPLE.read_text(encoding="utf-8")
    doc = load(text, "pipeline.yaml")
    assert doc.exact and doc.style == Style(2, 4, 2)
    assert doc.dump() == text


@pytest.mark.parametrize("text, style", [
    ("a:\n  b: 1\nc:\n- x\n- y\n", Style(2, 2, 0)),
    ("a:\n    b: 1\nc:\n    - x\n", Style(4, 6, 4)),
    ("tables:\n  - name: t\n    columns:\n      - {name: id}\n", Style(2, 4, 2)),
])
def test_indentation_is_found_and_proved(text, style):
    assert guess_style(text) == style
    doc = load(text, "x.yaml")
    assert doc.exact and doc.dump() == text


def test_a_file_no_single_style_reproduces_is_flagged():
    text = "a:\n  - x\nb:\n- y\n"  # two sequence styles in one file
    assert not load(text, "x.yaml").exact
