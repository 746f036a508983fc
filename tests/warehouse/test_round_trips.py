"""The load job's round trips at scale (issue 24): the queue drained by several receivers, done messages
deleted ten at a time across tables, and at most --concurrency statements at the warehouse at once.

SQS and the Data API are stood in for at the AWS boundary by small thread-safe fakes that keep the
documented rules that decide here, and every request is validated against botocore's own model of the
operation (parameter names, types, and the SQS list limits the model carries): a received message is
hidden from other receivers for the visibility timeout (SQS Developer Guide, sqs-visibility-timeout.html),
ReceiveMessage returns at most MaxNumberOfMessages (1 to 10), DeleteMessageBatch takes up to ten entries
(SQS API Reference, DeleteMessageBatch; more fail with TooManyEntriesInBatchRequest).
"""

from __future__ import annotations

import json
import threading
import time

import botocore.session
import pytest
from botocore.validate import validate_parameters

from dwctl.warehouse import load_job

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed"
MODELS = botocore.session.get_session()


def check(service: str, operation: str, params: dict) -> None:
    """botocore's own validation of a request (what the client does before sending it)."""
    model = MODELS.get_service_model(service).operation_model(operation)
    validate_parameters(params, model.input_shape)


class Sqs:
    """A standard queue: messages hidden once received, deleted by receipt handle."""

    def __init__(self, messages: list[dict]):
        self.visible, self.lock = list(messages), threading.Lock()
        self.receivers: set[int] = set()
        self.deletes: list[list[str]] = []

    def get_queue_attributes(self, **params):
        check("sqs", "GetQueueAttributes", params)
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.visible))}}

    def receive_message(self, **params):
        check("sqs", "ReceiveMessage", params)
        assert 1 <= params["MaxNumberOfMessages"] <= 10  # SQS API Reference, ReceiveMessage: 1 to 10
        time.sleep(0.002)  # a round trip: receivers overlap
        with self.lock:
            self.receivers.add(threading.get_ident())
            got, self.visible = self.visible[:params["MaxNumberOfMessages"]], self.visible[params["MaxNumberOfMessages"]:]
        return {"Messages": got} if got else {}

    def delete_message_batch(self, **params):
        check("sqs", "DeleteMessageBatch", params)
        if len(params["Entries"]) > 10:
            raise AssertionError("TooManyEntriesInBatchRequest: DeleteMessageBatch takes up to ten entries")
        assert len({e["Id"] for e in params["Entries"]}) == len(params["Entries"])  # Ids unique in a request
        with self.lock:
            self.deletes.append([e["ReceiptHandle"] for e in params["Entries"]])
        return {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}


def message(key: str) -> dict:
    body = {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "landing"}, "object": {"key": key, "size": 10, "etag": "e"}}}
    return {"MessageId": key, "ReceiptHandle": "rh-" + key, "Body": json.dumps(body)}


@pytest.fixture(scope="module")
def config(rendered):
    return load_job.Config.from_json(rendered["iac/glue_scripts/load_job_config.json"])


def test_the_queue_is_drained_by_several_receivers_and_done_messages_are_deleted_ten_at_a_time(config):
    files = [f"{prefix}20240101-12{n:02d}00000.parquet" for prefix in config.tables.values() for n in range(12)]
    unrelated = ["raw/_dwctl_manifests/orders/x.manifest"]
    sqs = Sqs([message(k) for k in files + unrelated])
    discovery = load_job.QueueDiscovery(sqs, QUEUE, config)
    found = discovery.new_objects(set(config.tables))
    assert sorted(o.key for objs in found.values() for o in objs) == sorted(files)
    assert len(sqs.receivers) > 1, "one receiver drained the whole queue"
    assert sqs.deletes == [["rh-" + unrelated[0]]]  # nothing to load: acknowledged at once
    for table in sorted(found):  # as run does, table by table, from its threads
        discovery.done(found[table])
    discovery.flush()
    done = [r for call in sqs.deletes[1:] for r in call]
    assert sorted(done) == sorted("rh-" + k for k in files)  # each exactly once
    assert [len(call) for call in sqs.deletes[1:]] == [10] * (len(files) // 10) + [len(files) % 10]


def test_a_drain_goes_past_an_approximate_depth_while_calls_come_back_full(config):
    """ApproximateNumberOfMessages is approximate (SQS API Reference, GetQueueAttributes): a queue that
    reports fewer messages than it holds is still drained."""
    files = [f"{config.tables['orders']}20240101-12{n:02d}00000.parquet" for n in range(25)]
    sqs = Sqs([message(k) for k in files])
    sqs.get_queue_attributes = lambda **params: {"Attributes": {"ApproximateNumberOfMessages": "3"}}
    found = load_job.QueueDiscovery(sqs, QUEUE, config).new_objects({"orders"})
    assert len(found["orders"]) == 25 and not sqs.visible


class DataApi:
    """Statements that take a little while; counts how many are at the warehouse at once."""

    def __init__(self):
        self.lock, self.running, self.most, self.n = threading.Lock(), set(), 0, 0
        self.callers: set[int] = set()

    def batch_execute_statement(self, **params):
        check("redshift-data", "BatchExecuteStatement", params)
        with self.lock:
            self.n += 1
            self.running.add(self.n)
            self.most = max(self.most, len(self.running))
            self.callers.add(threading.get_ident())
            return {"Id": f"00000000-0000-0000-0000-{self.n:012d}"}

    def describe_statement(self, **params):
        check("redshift-data", "DescribeStatement", params)
        time.sleep(0.003)
        with self.lock:
            self.running.discard(int(params["Id"].rsplit("-", 1)[1]))
        return {"Id": params["Id"], "Status": "FINISHED"}


def test_at_most_concurrency_statements_are_at_the_warehouse_at_once():
    api = DataApi()
    warehouse = load_job.InFlight(load_job.Warehouse(api, "shop-prod", "shop", sleep=lambda s: None), 3)
    load_job.in_parallel(lambda i: warehouse.batch(["SELECT %d" % i], "dwctl-load-t%d" % i), range(40), 12)
    assert api.n == 40 and len(api.callers) > 3
    assert 1 < api.most <= 3, api.most
    assert warehouse.sleep is not None  # the warehouse's own pause, for retry_aborts
