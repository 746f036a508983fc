"""The shape-cached HCL parse gives exactly what hcl2 gives, and a defect in one of 1,000 blocks is still caught.

`dwctl validate` parses each block shape once (dwctl/gates/hcl_parse.py) instead of every rendered
block; these tests compare its trees with `hcl2.loads` on the rendered stacks and on texts built to
break a textual shortcut, then plant single defects in a 1,000-table stack.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import hcl2
import pytest
import yaml

from dwctl.gates.hcl_parse import Parser
from dwctl.gates.provider_schema import load_schema, validate_files
from dwctl.render.engine import render
from dwctl.spec.read import parse_spec
from tests.conftest import EXAMPLE

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "aws-provider-schema.json"


def many_tables(count: int):
    """The example spec with `count` generated tables (the shape of bench/bench_render.py's)."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["tables"] = [{"schema": "public", "name": f"table_{i:04d}", "primary_key": ["id"],
                       "columns": [{"name": "id", "type": "bigint", "nullable": False},
                                   {"name": "note", "type": "varchar(40)"}, {"name": "at", "type": "timestamptz"}]}
                      for i in range(count)]
    data["governance"] = {"admins": data["governance"]["admins"]}
    return parse_spec(yaml.safe_dump(data, sort_keys=False), "many.yaml")


def tf_files(spec) -> dict[str, str]:
    return {path: text for path, text in render(spec, "many.yaml").items()
            if path.startswith("iac/") and path.count("/") == 1 and path.endswith(".tf")}


@pytest.fixture(scope="module")
def thousand() -> dict[str, str]:
    return tf_files(many_tables(1000))


def test_the_rendered_stacks_parse_as_hcl2_parses_them():
    for files in (tf_files(parse_spec(EXAMPLE.read_text(encoding="utf-8"), "pipeline.yaml")), tf_files(many_tables(30))):
        parser = Parser()
        for path, text in files.items():
            assert parser.loads(text) == hcl2.loads(text), path
    more = Parser()
    for text in tf_files(many_tables(60)).values():
        more.loads(text)
    assert len(more.trees) == len(parser.trees), "twice the tables, the same block shapes parsed"


TRICKY = [
    # quotes, escapes, interpolations, templates and unicode in and around literals
    '''resource "aws_s3_bucket" "a" {
  bucket = "it's \\"quoted\\" ${var.x} $${not} %{if true}y%{endif} é"
  tags   = { "k.k" = "v'1", plain = "a_b.c_d.e", n = "1" } # a "comment" with aws_x.y.z
}
''',
    # a heredoc holding quotes and braces; a block comment over lines
    '''locals {
  /* "not { a string" */
  policy = <<EOF
{"Statement": [{"Effect": "Allow"}]} aws_iam_role.x.arn
EOF
  other = jsonencode({ Action = ["s3:GetObject"], Resource = "${aws_s3_bucket.a.arn}/*" })
}
''',
    # a long tuple of objects of two shapes, then one with two elements a line
    "locals {\n  rules = [\n" + "".join(
        f'    {{\n      "rule-id" = "{i}"\n      ref = aws_glue_catalog_table.t_{i}.name\n'
        + ('      "x" = [1, 2]\n' if i % 3 else "") + "    },\n" for i in range(20))
    + '    "tail",\n  ]\n  pairs = [\n' + "".join(f'    "a{i}", "b{i}",\n' for i in range(17)) + "  ]\n}\n",
    # nested repeated blocks, one-line blocks, a nested tuple attribute
    'resource "aws_glue_crawler" "c" {\n' + "".join(
        f'  s3_target {{\n    path = format("s3://%s/{i}", aws_s3_bucket.a.id)\n  }}\n' for i in range(20))
    + '  tags = {}\n}\nterraform {}\n',
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_texts_parse_as_hcl2_parses_them(text):
    assert Parser().loads(text) == hcl2.loads(text)


def test_a_syntax_error_is_hcl2s_own_error():
    text = textwrap.dedent('''\
        resource "aws_s3_bucket" "a" {
          bucket = "x"
        }
        resource "aws_s3_bucket" "b" {
          bucket = = "y"
        }
        ''')
    with pytest.raises(Exception) as ours:
        Parser().loads(text)
    with pytest.raises(Exception) as theirs:
        hcl2.loads(text)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def line_of(text: str, needle: str, start: int = 0) -> int:
    return text[:text.index(needle, start)].count("\n") + 1


def test_a_defect_in_one_of_1000_blocks_is_caught_at_its_line(thousand):
    schema = load_schema(SCHEMA_PATH)
    assert validate_files(thousand, schema) == [], "the rendered stack is clean"
    files = dict(thousand)
    glue = files["iac/glue.tf"]
    # table 537's catalog table: a misspelt argument; table 123's: a column without its name
    block = glue.index('resource "aws_glue_catalog_table" "table_0537"')
    typo = glue.index("  table_type", block)
    glue = glue[:typo] + "  table_typo" + glue[typo + len("  table_type"):]
    block = glue.index('resource "aws_glue_catalog_table" "table_0123"')
    column = glue.index("    columns {", block)
    name = glue.index("      name = ", column)
    glue = glue[:name] + glue[glue.index("\n", name) + 1:]
    # the crawler's target of table 999 refers to a bucket that does not exist
    target = glue.index('"table_0999")', glue.index('resource "aws_glue_crawler"'))
    bucket = glue.rindex("aws_s3_bucket.landing.id", 0, target)
    glue = glue[:bucket] + "aws_s3_bucket.landingx.id" + glue[bucket + len("aws_s3_bucket.landing.id"):]
    files["iac/glue.tf"] = glue
    assert [str(p) for p in validate_files(files, schema)] == [
        f'iac/glue.tf:{line_of(glue, "    columns {", block)}: aws_glue_catalog_table.table_0123 block '
        '"storage_descriptor.columns": missing required argument "name"',
        f"iac/glue.tf:{line_of(glue, 'table_typo')}: aws_glue_catalog_table.table_0537: unknown argument \"table_typo\"",
        f"iac/glue.tf:{line_of(glue, 'landingx')}: reference to undeclared resource \"aws_s3_bucket.landingx\"",
    ]
