"""Issue 12, items 11 and 12 (the parts landed last): the load job's own database identity, the DMS
trust policies' source conditions, and the load job's log groups. The rendered stack is read with
hcl2 (checkov's parser); nothing is mocked.
"""

from __future__ import annotations

from tests.render.test_fresh_account import data_sources, render_text
from tests.render.test_iac import one, resources


def loader_statements(files: dict[str, str]) -> dict[str, dict]:
    policy = data_sources(files, "iac/loader_job.tf", "aws_iam_policy_document")["loader"]
    return {one(s, "sid"): s for s in policy["statement"]}


# --- 11. the load job is not the admin ----------------------------------------------------------------------
def test_11_the_job_signs_in_with_its_role_and_never_reads_the_admin_secret(rendered):
    job = resources(rendered, "iac/loader_job.tf", "aws_glue_job")["loader"]
    arguments = one(job, "default_arguments")
    assert "--secret_arn" not in arguments and "--workgroup" in arguments and "--database" in arguments
    statements = loader_statements(rendered)
    actions = {a for s in statements.values() for a in one(s, "actions")}
    assert not [a for a in actions if a.startswith("secretsmanager:")]
    assert one(statements["SignInAsItsOwnDatabaseUser"], "actions") == ["redshift-serverless:GetCredentials"]
    assert one(statements["SignInAsItsOwnDatabaseUser"], "resources") == ["${aws_redshiftserverless_workgroup.this.arn}"]
    via = one(one(statements["EncryptManifestsReadScript"], "condition"), "values")
    assert not [v for v in via if v.startswith("secretsmanager.")], "no secret to decrypt any more"


def test_11_terraform_creates_the_job_user_with_rights_on_the_two_schemas_only(rendered):
    text = rendered["iac/loader_job.tf"]
    assert 'loader_db_user_name = "IAMR:${aws_iam_role.loader.name}"' in text
    assert 'loader_db_user      = "\\"${local.loader_db_user_name}\\""' in text
    assert 'staging   = "\\"staging\\""' in text and 'analytics = "\\"analytics\\""' in text
    made = resources(rendered, "iac/loader_job.tf", "aws_redshiftdata_statement")
    assert set(made) == {"loader_user_procedure", "loader_user", "loader_schema", "loader_grant",
                         "copy_role_public_revoke"}
    for body in made.values():  # run as the admin, through its secret, by Terraform
        assert one(body, "secret_arn") == "${aws_redshiftserverless_namespace.this.admin_password_secret_arn}"
        assert one(body, "workgroup_name") == "${aws_redshiftserverless_workgroup.this.workgroup_name}"
    assert one(made["loader_schema"], "sql") == \
        "CREATE SCHEMA IF NOT EXISTS ${each.value} AUTHORIZATION ${local.loader_db_user}"
    assert one(made["loader_schema"], "depends_on") == ["${aws_redshiftdata_statement.loader_user}"]
    assert one(made["loader_grant"], "depends_on") == ["${aws_redshiftdata_statement.loader_schema}",
                                                       "${aws_redshiftdata_statement.copy_role_public_revoke}"]
    grants = text.split("loader_grants = merge(", 1)[1].split("\n  )\n", 1)[0]
    assert "ON SCHEMA ${schema}" in grants and "ON ALL TABLES IN SCHEMA ${schema}" in grants
    assert "FOR COPY" in grants and "ALL PRIVILEGES" not in grants and "SUPERUSER" not in text
    assert 'GRANT CREATE ON DATABASE \\"${var.redshift_database}\\" TO' in grants  # for sql/01's CREATE SCHEMA IF NOT EXISTS
    job = resources(rendered, "iac/loader_job.tf", "aws_glue_job")["loader"]
    assert "${aws_redshiftdata_statement.loader_grant}" in one(job, "depends_on")


# --- issue 21, items 7 and 8: what the job's grants really give ------------------------------------------------
def test_item7_the_copy_role_is_usable_for_copy_only_once_public_loses_assumerole(rendered):
    """r_GRANT usage notes: "To enable the use of the ASSUMEROLE permission for users, roles, and groups, a
    superuser performs the following two actions": run "revoke assumerole on all from public for all" once,
    then grant. Until then every user may use every role of the namespace: the grant alone restricts
    nothing. The admin (a superuser, "A superuser always retains the ASSUMEROLE permission") revokes first."""
    made = resources(rendered, "iac/loader_job.tf", "aws_redshiftdata_statement")
    revoke = made["copy_role_public_revoke"]
    assert one(revoke, "sql") == "REVOKE ASSUMEROLE ON ALL FROM PUBLIC FOR ALL"
    assert one(revoke, "secret_arn") == "${aws_redshiftserverless_namespace.this.admin_password_secret_arn}"
    assert "${aws_redshiftdata_statement.copy_role_public_revoke}" in one(made["loader_grant"], "depends_on")
    grants = rendered["iac/loader_job.tf"].split("loader_grants = merge(", 1)[1].split("\n  )\n", 1)[0]
    assert "GRANT ASSUMEROLE ON '${aws_iam_role.redshift.arn}' TO ${local.loader_db_user} FOR COPY" in grants
    # The revoke reaches only the stack's role: the namespace has no other.
    namespace = resources(rendered, "iac/redshift.tf", "aws_redshiftserverless_namespace")["this"]
    assert one(namespace, "iam_roles") == ["${aws_iam_role.redshift.arn}"]


# r_GRANT (Database Developer Guide, current): the permissions GRANT ... ON [TABLE] | ALL TABLES IN SCHEMA takes
# for tables; RULE and TRIGGER are not supported ("Amazon Redshift doesn't support the RULE and TRIGGER permissions").
TABLE_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "REFERENCES", "ALTER", "TRUNCATE"}


def job_statements(rendered: dict[str, str]) -> list[str]:
    """Every statement the job can run: the rendered SQL and queries its config carries, and the statements its
    code builds (the string literals of load_job.py that start a statement)."""
    import io
    import json
    import tokenize
    from ast import literal_eval

    from dwctl.render.engine import LOAD_JOB_PATH
    from dwctl.render.job_config import PATH
    from dwctl.warehouse.load_job import split_statements

    found = [s for path, text in rendered.items() if path.startswith("sql/") for s in split_statements(text)]
    queries = json.loads(rendered[PATH])["queries"].values()
    found += [q for query in queries for q in ([query] if isinstance(query, str) else query)]
    tokens = tokenize.generate_tokens(io.StringIO(rendered[LOAD_JOB_PATH]).readline)
    literals = [literal_eval(t.string) for t in tokens if t.type == tokenize.STRING]
    return found + [text for text in literals if isinstance(text, str)]


def test_item8_the_job_gets_the_table_privileges_it_uses_in_rgrants_terms(rendered):
    """Each privilege is one r_GRANT documents for tables, and one the job uses on a table it does not own: the
    merge's SELECT, INSERT, UPDATE, DELETE, a migration's ALTER TABLE, a rebuild's DROP TABLE. TRUNCATE would
    commit the batch (r_TRUNCATE) and the job never runs it; REFERENCES is for foreign keys, which it never makes."""
    import re

    [privileges] = re.findall(r'"GRANT ([A-Z, ]+) ON ALL TABLES IN SCHEMA \$\{schema\}', rendered["iac/loader_job.tf"])
    granted = {p.strip() for p in privileges.split(",")}
    assert granted <= TABLE_PRIVILEGES
    run = [s.strip() for s in job_statements(rendered)]
    starts = {"SELECT": "SELECT ", "INSERT": "INSERT INTO ", "UPDATE": "UPDATE ", "DELETE": "DELETE FROM ",
              "ALTER": "ALTER TABLE ", "DROP": "DROP TABLE ", "TRUNCATE": "TRUNCATE "}
    used = {p for p, head in starts.items() for s in run if s.startswith(head)}
    if any(s.startswith(("CREATE TABLE", "ALTER TABLE")) and ("REFERENCES " in s or "FOREIGN KEY" in s) for s in run):
        used.add("REFERENCES")
    assert granted == used


def test_11_schema_names_from_the_spec_are_quoted_in_the_grants(example_text):
    files = render_text(example_text.replace("staging_schema: staging", "staging_schema: land_stage"))
    assert 'staging   = "\\"land_stage\\""' in files["iac/loader_job.tf"]


def test_11_dms_roles_trust_only_this_accounts_dms_resources(rendered):
    policies = data_sources(rendered, "iac/iam.tf", "aws_iam_policy_document")
    text = rendered["iac/iam.tf"]
    assert 'dms_source_arn_pattern = "arn:${local.partition}:dms:${local.region}:${local.account_id}:*"' in text
    for name in ("dms_assume", "dms_secrets_assume"):
        conditions = {one(c, "variable"): c for c in one(policies[name], "statement")["condition"]}
        assert one(conditions["aws:SourceAccount"], "values") == ["${local.account_id}"]
        assert one(conditions["aws:SourceArn"], "test") == "ArnLike"
        assert one(conditions["aws:SourceArn"], "values") == ["${local.dms_source_arn_pattern}"]


# --- 12. the load job's logs ---------------------------------------------------------------------------------
def test_12_the_load_job_log_groups_exist_with_retention_and_the_key(rendered):
    groups = resources(rendered, "iac/loader_job.tf", "aws_cloudwatch_log_group")
    job_logs = groups["loader"]
    assert one(job_logs, "for_each") == "${toset(['output', 'error'])}"
    assert one(job_logs, "name") == ("/aws-glue/python-jobs/${aws_glue_security_configuration.this.name}-role/"
                                     "${aws_iam_role.loader.name}/${each.key}")
    assert "path" not in resources(rendered, "iac/loader_job.tf", "aws_iam_role")["loader"]  # the default, "/"
    assert one(job_logs, "retention_in_days") == "${var.glue_log_retention_days}"
    assert one(job_logs, "kms_key_id") == "${aws_kms_key.this.arn}"
    job = resources(rendered, "iac/loader_job.tf", "aws_glue_job")["loader"]
    assert one(job, "security_configuration") == "${aws_glue_security_configuration.this.name}"
    assert "${aws_cloudwatch_log_group.loader}" in one(job, "depends_on")


def test_12_the_load_job_may_write_to_the_documented_log_groups_and_its_own(rendered):
    """Issue 20, item 6: no page names a Python shell job's groups under a security configuration, so the
    role may write to each name a page documents and to the stack's own two (tests/deploy/
    test_runtime_permissions.py evaluates the writes against the applied policy)."""
    statements = loader_statements(rendered)
    assert one(statements["JobLogs"], "actions") == ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                     "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources_expr = one(statements["JobLogs"], "resources")
    assert "local.loader_log_groups_documented" in resources_expr and "aws_cloudwatch_log_group.loader" in resources_expr
    assert log_resources(s for sid, s in statements.items() if sid != "JobLogs") == []  # no other statement names a log group
    documented = rendered["iac/loader_job.tf"].split("loader_log_groups_documented = [", 1)[1].split("]", 1)[0]
    assert [line.strip().strip(",") for line in documented.strip().splitlines()] == [
        '"/aws-glue/jobs-${aws_iam_role.loader.name}-${aws_glue_security_configuration.this.name}/*"',
        '"/aws-glue/python-jobs/output"', '"/aws-glue/python-jobs/errors"', '"/aws-glue/python-jobs/error"']
    job = resources(rendered, "iac/loader_job.tf", "aws_glue_job")["loader"]
    assert (one(job, "glue_version"), one(one(job, "command"), "name")) == ("3.0", "pythonshell")
    assert not [a for a in one(job, "default_arguments") if "continuous" in a or a.startswith("--custom-log")]


def test_12_the_crawler_may_write_to_its_own_log_group_only(rendered):
    crawler = data_sources(rendered, "iac/iam.tf", "aws_iam_policy_document")["crawler"]
    [logs] = [s for s in crawler["statement"] if one(s, "sid") == "CrawlerLogs"]
    assert one(logs, "resources") == ["${aws_cloudwatch_log_group.crawler.arn}",
                                      "${aws_cloudwatch_log_group.crawler.arn}:*"]
    assert log_resources(crawler["statement"]) == one(logs, "resources")
    group = resources(rendered, "iac/glue.tf", "aws_cloudwatch_log_group")["crawler"]
    assert one(group, "name") == ("/aws-glue/crawlers-role/${aws_iam_role.crawler.name}-"
                                  "${aws_glue_security_configuration.this.name}")
    assert "path" not in resources(rendered, "iac/iam.tf", "aws_iam_role")["crawler"]  # the default, "/"
    crawler_body = resources(rendered, "iac/glue.tf", "aws_glue_crawler")["this"]
    assert one(crawler_body, "security_configuration") == "${aws_glue_security_configuration.this.name}"
    assert "${aws_cloudwatch_log_group.crawler}" in one(crawler_body, "depends_on")


def log_resources(statements) -> list[str]:
    """Every resource of these statements that is a log group or stream."""
    return [r for s in statements for r in one(s, "resources") if ":logs:" in r or "log_group" in r]


# --- the job's database user, created once however often the statements run ---------------------------------
def test_11_the_job_user_is_created_by_a_procedure_that_checks_first(rendered):
    made = resources(rendered, "iac/loader_job.tf", "aws_redshiftdata_statement")
    procedure = one(made["loader_user_procedure"], "sql")
    assert procedure.startswith("CREATE OR REPLACE PROCEDURE public.dwctl_create_loader_user() AS $$\n")
    assert procedure.endswith("\n$$ LANGUAGE plpgsql")
    assert "FROM svv_user_info WHERE user_name = '${local.loader_db_user_name}'" in procedure
    assert "EXECUTE 'CREATE USER ${local.loader_db_user} PASSWORD DISABLE'" in procedure
    assert "PASSWORD '" not in procedure and "secret" not in procedure.lower()
    call = made["loader_user"]
    assert one(call, "sql") == "CALL public.dwctl_create_loader_user()"
    assert one(call, "depends_on") == ["${aws_redshiftdata_statement.loader_user_procedure}"]
    assert one(one(call, "lifecycle"), "replace_triggered_by") == ["${aws_redshiftdata_statement.loader_user_procedure}"]
    assert one(made["loader_schema"], "depends_on") == ["${aws_redshiftdata_statement.loader_user}"]
