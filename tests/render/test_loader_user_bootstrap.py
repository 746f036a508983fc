"""The load job's database user is created once, however often Terraform runs its bootstrap.

CREATE USER fails on a user that exists and Redshift has no IF NOT EXISTS, so the stack creates a
procedure that checks SVV_USER_INFO first and CALLs it (templates/iac/loader_job.tf.j2). The SQL
here is the rendered stack's own, its Terraform references filled in with the example's values:

- run on the PostgreSQL server the tests already start, twice, and once more after the procedure is
  re-created (a replaced statement). PostgreSQL differs from Redshift in two places, both stood in
  for: it has no SVV_USER_INFO (a view of pg_user with its user_name column stands in) and no
  CREATE USER ... PASSWORD DISABLE (PASSWORD NULL, "no password", stands in). The plain CREATE USER
  the stack ran before fails the second time on the same server.
- evaluated by the real Terraform (offline provider, mocked AWS, `dwctl test`), which must produce
  exactly that SQL: the heredoc, its indentation and the `$$` quoting are Terraform's, not hcl2's.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from tests.deploy.test_rendered_stack import offline, project  # noqa: F401  (fixture)
from tests.render.test_iac import one, resources
from tests.support.mock_apply import lifecycle_test
from tests.support.realtf import real_provider_env  # noqa: F401  (fixture)

ROLE = "shop-prod-glue-loader"  # "${local.name}-glue-loader" for the example (project shop, environment prod)
USER = f"IAMR:{ROLE}"
CALL = "CALL public.dwctl_create_loader_user()"


def bootstrap_sql(files: dict[str, str]) -> tuple[str, str]:
    """The two statements' SQL, with the Terraform references the example resolves filled in."""
    made = resources(files, "iac/loader_job.tf", "aws_redshiftdata_statement")
    role = resources(files, "iac/loader_job.tf", "aws_iam_role")["loader"]
    assert one(role, "name") == "${local.name}-glue-loader"
    procedure = (one(made["loader_user_procedure"], "sql")
                 .replace("${local.loader_db_user_name}", USER).replace("${local.loader_db_user}", f'"{USER}"'))
    assert "${" not in procedure
    return procedure + "\n", one(made["loader_user"], "sql")  # Terraform keeps the heredoc's last newline, hcl2 drops it


def users_named(server, db: str) -> int:
    with psycopg.connect(server.dsn(db=db), autocommit=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM pg_user WHERE usename = %s", (USER,)).fetchone()[0]


@pytest.fixture
def database(pg_replica):
    """A fresh database with the SVV_USER_INFO stand-in; the job user is dropped afterwards."""
    name = "dwctl_user_bootstrap"
    pg_replica.execute(f"DROP DATABASE IF EXISTS {name}")
    pg_replica.execute(f'DROP ROLE IF EXISTS "{USER}"')
    pg_replica.create_database(name, "CREATE VIEW public.svv_user_info AS SELECT usename::text AS user_name FROM pg_user")
    yield pg_replica, name
    pg_replica.execute(f"DROP DATABASE IF EXISTS {name}")
    pg_replica.execute(f'DROP ROLE IF EXISTS "{USER}"')


def test_the_bootstrap_creates_the_user_once_however_often_it_runs(rendered, database):
    server, db = database
    procedure, call = bootstrap_sql(rendered)
    assert call == CALL
    on_postgres = procedure.replace(" PASSWORD DISABLE'", " PASSWORD NULL'")
    assert on_postgres != procedure
    assert users_named(server, db) == 0
    for statements in ([on_postgres, call], [call], [on_postgres, call]):  # apply, the CALL replaced, both replaced
        for sql in statements:
            server.execute(sql, db=db)
        assert users_named(server, db) == 1


def test_the_plain_create_user_it_replaces_fails_the_second_time(database):
    server, db = database
    server.execute(f'CREATE USER "{USER}" PASSWORD NULL', db=db)
    with pytest.raises(psycopg.errors.DuplicateObject):
        server.execute(f'CREATE USER "{USER}" PASSWORD NULL', db=db)


RUNS = '''
run "apply" {{
  command = apply

  assert {{
    condition     = aws_redshiftdata_statement.loader_user_procedure.sql == {procedure}
    error_message = "Terraform must send the procedure SQL the PostgreSQL test ran."
  }}

  assert {{
    condition     = aws_redshiftdata_statement.loader_user.sql == {call}
    error_message = "The second statement must CALL the procedure."
  }}
}}
'''


def test_terraform_sends_exactly_the_sql_tested(offline, rendered, tmp_path, monkeypatch):  # noqa: F811
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the mocks need no credentials at all
        monkeypatch.delenv(key)
    procedure, call = bootstrap_sql(rendered)
    root = project(tmp_path / "bootstrap", protect_data=False)
    tests = root / "iac" / "tests"
    runs = RUNS.format(procedure=json.dumps(procedure), call=json.dumps(call))
    (tests / "bootstrap.tftest.hcl").write_text(
        lifecycle_test((tests / "guards.tftest.hcl").read_text(encoding="utf-8"), runs), encoding="utf-8")
    done = CliRunner().invoke(cli, ["test", "-c", str(root / "spec.yaml"), "-o", str(root)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    block = done.output.split("tests/bootstrap.tftest.hcl... in progress", 1)[1]
    assert 'run "apply"... pass' in block, done.output
