"""The one AWS boundary of the day-two commands: boto3 clients, and AWS errors as dwctl errors."""

from __future__ import annotations

from contextlib import contextmanager

from dwctl.errors import DwctlError, UsageError


def client(service: str, region: str):
    """A boto3 client (tests replace this function with stubbed clients)."""
    try:
        import boto3
    except ImportError:
        raise UsageError("this command needs boto3: pip install boto3") from None
    return boto3.client(service, region_name=region)


class AwsError(DwctlError):
    """An AWS call failed (credentials, permissions, a missing resource): exit 1 with AWS's message."""


@contextmanager
def aws_errors(doing: str):
    """Turn botocore's exceptions into one line naming what was being done and AWS's reason."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        module = type(exc).__module__ or ""
        if not module.startswith(("botocore", "boto3")):
            raise
        raise AwsError(f"{doing}: {exc}") from None
