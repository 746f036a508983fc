"""The IAM evaluator (tests/support/iam_eval.py) on the IAM User Guide's own examples.

Each test names the page and example it takes; the expected answers are the Guide's, so the
evaluator the stack's tests rely on is held to AWS's documented logic, not to itself.
"""

from __future__ import annotations

import pytest

from tests.support.iam_eval import Principal, Request, condition_holds, decide

ACCOUNT = "111122223333"
ROLE = Principal(ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:role/examplerole")


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}



# --- reference_policies_elements_condition_operators.html, "...IfExists condition operators" -------------------
def test_ifexists_with_a_negated_operator_in_a_deny_still_denies_when_the_key_is_missing():
    """"If you are using an "Effect": "Deny" element with a negated condition operator like
    StringNotEqualsIfExists, the request is still denied even if the condition key is not present."
    (The landing bucket's deny statements are exactly this shape: issue 20, item 2.)"""
    allow = policy({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket/*"})
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket/*",
                   "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}})
    no_header = Request(ROLE, "s3:PutObject", "arn:aws:s3:::bucket/key")
    assert not decide(no_header, [allow], deny)
    assert "explicit Deny" in decide(no_header, [allow], deny).reason
    with_header = Request(ROLE, "s3:PutObject", "arn:aws:s3:::bucket/key", {"s3:x-amz-server-side-encryption": "aws:kms"})
    assert decide(with_header, [allow], deny)
    other = Request(ROLE, "s3:PutObject", "arn:aws:s3:::bucket/key", {"s3:x-amz-server-side-encryption": "AES256"})
    assert not decide(other, [allow], deny)


RUN_INSTANCES = {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}


def test_the_guides_runinstances_policy_without_ifexists_allows_nothing_and_with_it_works():
    """The "THISPOLICYDOESNOTWORK" example: the image and other resources have no ec2:InstanceType,
    so StringLike fails on them; StringLikeIfExists passes where the key is absent."""
    broken = policy({"Sid": "THISPOLICYDOESNOTWORK", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                     "Condition": {"StringLike": RUN_INSTANCES}})
    fixed = policy({"Sid": "RunInstance", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                    "Condition": {"StringLikeIfExists": RUN_INSTANCES}})
    image = Request(ROLE, "ec2:RunInstances", "arn:aws:ec2:us-east-2::image/ami-1")
    instance = Request(ROLE, "ec2:RunInstances", f"arn:aws:ec2:us-east-2:{ACCOUNT}:instance/*", {"ec2:InstanceType": "t2.micro"})
    big = Request(ROLE, "ec2:RunInstances", f"arn:aws:ec2:us-east-2:{ACCOUNT}:instance/*", {"ec2:InstanceType": "m4.large"})
    assert not decide(image, [broken]) and decide(instance, [broken])
    assert decide(image, [fixed]) and decide(instance, [fixed]) and not decide(big, [fixed])


def test_a_missing_key_makes_a_positive_operator_false_and_a_negated_one_true():
    """"If the key that you specify in a policy condition is not present in the request context, the
    values do not match and the condition is false. If the policy condition requires that the key is
    not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the condition
    is true." """
    bare = Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k")
    assert not condition_holds("StringLike", "aws:SourceArn", "arn:*", bare)
    assert not condition_holds("ArnLike", "aws:SourceArn", "arn:*", bare)
    assert condition_holds("StringNotLike", "aws:SourceArn", "arn:*", bare)
    assert condition_holds("ArnNotLike", "aws:SourceArn", "arn:*", bare)
    assert condition_holds("StringNotEquals", "aws:SourceArn", "x", bare)
    assert condition_holds("StringEqualsIfExists", "aws:SourceArn", "x", bare)


def test_null_checks_whether_the_key_is_present():
    """The Guide's Null example: EC2 only when the caller does not use temporary credentials
    (aws:TokenIssueTime is present only in requests signed with them)."""
    only_long_term = policy({"Action": "ec2:*", "Effect": "Allow", "Resource": "*",
                             "Condition": {"Null": {"aws:TokenIssueTime": "true"}}})
    assert decide(Request(ROLE, "ec2:DescribeInstances", "*"), [only_long_term])
    assert not decide(Request(ROLE, "ec2:DescribeInstances", "*", {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}),
                      [only_long_term])


def test_arnlike_matches_each_arn_part_on_its_own_where_stringlike_spans_colons():
    """The Guide's example: pattern arn:aws:someservice:*:111122223333:finance/* and the request value
    arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt: StringLike
    matches, ArnLike does not."""
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = Request(ROLE, "x:Y", "*", {"aws:SourceArn": "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"})
    assert condition_holds("StringLike", "aws:SourceArn", pattern, value)
    assert not condition_holds("ArnLike", "aws:SourceArn", pattern, value)


def test_arnequals_on_the_source_arn_admits_only_that_topic():
    """The Guide's SQS queue policy example: SNS may send only on behalf of the named topic; the key
    is absent when a principal calls directly, so the condition is false."""
    topic = "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"
    sqs_policy = policy({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "SQS:SendMessage",
                         "Resource": "arn:aws:sqs:us-east-2:123456789012:QUEUE-ID",
                         "Condition": {"ArnEquals": {"aws:SourceArn": topic}}})
    sns = Principal("123456789012", service="sns.amazonaws.com")
    queue = "arn:aws:sqs:us-east-2:123456789012:QUEUE-ID"
    assert decide(Request(sns, "sqs:SendMessage", queue, {"aws:SourceArn": topic}), [], sqs_policy)
    assert not decide(Request(sns, "sqs:SendMessage", queue, {"aws:SourceArn": topic + "-other"}), [], sqs_policy)
    assert not decide(Request(sns, "sqs:SendMessage", queue), [], sqs_policy)


# --- reference_policies_condition-logic-multiple-context-keys-or-values.html ------------------------------------
def test_values_are_ored_and_a_negated_operators_values_nored_and_operators_anded():
    r = Request(ROLE, "x:Y", "*", {"aws:PrincipalTag/dept": "hr", "aws:RequestedRegion": "eu-west-1"})
    assert condition_holds("StringEquals", "aws:PrincipalTag/dept", ["finance", "hr"], r)
    assert not condition_holds("StringNotEquals", "aws:PrincipalTag/dept", ["finance", "hr"], r)
    assert condition_holds("StringNotEquals", "aws:PrincipalTag/dept", ["finance", "legal"], r)
    both = policy({"Effect": "Allow", "Action": "x:Y", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:PrincipalTag/dept": "hr", "aws:RequestedRegion": "us-east-1"}}})
    assert not decide(r, [both])


def test_set_operators_over_multivalued_keys():
    tags = Request(ROLE, "x:Y", "*", {"aws:TagKeys": ["team", "cost"]})
    assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], tags)
    assert not condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], tags)
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team", "cost", "env"], tags)
    none = Request(ROLE, "x:Y", "*")
    assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], none)
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], none)


# --- reference_policies_variables.html -------------------------------------------------------------------------
def test_policy_variables_come_from_the_request_and_an_unresolved_one_voids_the_statement():
    """The Guide's "home directory" example: ${aws:username} in Resource and in an s3:prefix condition.
    A key "not present ... causes the statement to be invalid"."""
    home = policy({"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": ["arn:aws:s3:::mybucket"],
                   "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*"]}}},
                  {"Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow",
                   "Resource": ["arn:aws:s3:::mybucket/${aws:username}/*"]})
    david = Principal(ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/David")
    ctx = {"aws:username": "David"}
    assert decide(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/David/notes.txt", ctx), [home])
    assert not decide(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/Adele/notes.txt", ctx), [home])
    assert decide(Request(david, "s3:ListBucket", "arn:aws:s3:::mybucket", {**ctx, "s3:prefix": "David/2024"}), [home])
    assert not decide(Request(david, "s3:ListBucket", "arn:aws:s3:::mybucket", {**ctx, "s3:prefix": "Adele/"}), [home])
    assert not decide(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/David/notes.txt"), [home])
    # A value from the request matches literally: a user named "*" is not a wildcard.
    star = {"aws:username": "*"}
    assert not decide(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/David/notes.txt", star), [home])


def test_context_keys_are_case_insensitive_and_actions_too():
    p = policy({"Effect": "Allow", "Action": "S3:getobject", "Resource": "*",
                "Condition": {"StringEquals": {"AWS:UserId": "AROAEXAMPLE:run"}}})
    assert decide(Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:userid": "AROAEXAMPLE:run"}), [p])


# --- reference_policies_evaluation-logic.html -------------------------------------------------------------------
def test_an_explicit_deny_in_any_policy_overrides_every_allow():
    allow = policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"})
    assert not decide(Request(ROLE, "s3:DeleteObject", "arn:aws:s3:::b/k"), [allow], deny)
    assert decide(Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k"), [allow], deny)


def test_without_an_allow_a_request_is_implicitly_denied():
    assert not decide(Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k"), [policy()])
    assert decide(Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k"), [policy()]).reason.startswith("implicit deny")


def test_in_one_account_a_resource_policy_naming_the_principal_is_enough():
    """"If an action is allowed by an identity-based policy, a resource-based policy, or both, then AWS
    allows the action." A resource policy naming only the account grants nothing by itself."""
    bucket = policy({"Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    account = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:GetObject",
                      "Resource": "arn:aws:s3:::b/*"})
    get = Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k")
    assert decide(get, [], bucket)
    assert not decide(get, [], account)


def test_a_key_policy_must_allow_the_principal_itself_or_delegate_to_iam():
    """KMS key policies are an exception: "they must explicitly allow access for principals"; a key
    policy statement for the account root enables IAM policies (KMS Developer Guide, key-policy-default.html)."""
    uses = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    root_only = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"})
    role_only = policy({"Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "kms:Decrypt", "Resource": "*"})
    nothing = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, "Action": "kms:*", "Resource": "*"})
    key = f"arn:aws:kms:us-east-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    decrypt = Request(ROLE, "kms:Decrypt", key)
    assert decide(decrypt, [uses], root_only, resource_policy_required=True)
    assert not decide(decrypt, [], root_only, resource_policy_required=True)
    assert decide(decrypt, [], role_only, resource_policy_required=True)
    assert not decide(decrypt, [uses], nothing, resource_policy_required=True)


def test_an_operator_the_evaluator_does_not_know_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="NumericLessThan"):
        condition_holds("NumericLessThan", "s3:max-keys", "10", Request(ROLE, "s3:ListBucket", "*", {"s3:max-keys": "5"}))
