"""Who leads what comes from most brokers, not from the one asked (scorer.kafka.view): a
broker cut off from the others but reachable by clients keeps naming itself the leader and
the coordinator it was; the brokers still connected to the controller agree on the new ones.

The answers here are aiokafka's own protocol structs, as decoded from a broker; the
three-broker behaviour under a real network cut is tests/reliability/cluster/test_network_cut.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.client import ConnectionGroup, CoordinationType
from aiokafka.conn import create_conn
from aiokafka.errors import CoordinatorNotAvailableError, NodeNotReadyError
from aiokafka.protocol.coordination import FindCoordinatorResponse_v1
from aiokafka.protocol.metadata import MetadataRequest, MetadataResponse_v5
from aiokafka.protocol.produce import ProduceResponse_v7
from aiokafka.protocol.transaction import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse_v0,
    EndTxnResponse_v0,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse_v0,
)
from aiokafka.structs import TopicPartition

from scorer.config import KafkaSettings
from scorer.kafka.clients import make_producer, make_reader
from scorer.kafka.view import (
    MajorityViewClient,
    _as_not_coordinator,
    _coordination_key,
    _error_codes,
    _stale_leader_error,
    leaders,
    majority_coordinator,
    majority_metadata,
)
from tests.support.kafka import KafkaBroker

BROKERS = [(n, "127.0.0.1", 9090 + n, None) for n in (1, 2, 3)]


def metadata(partition_leaders: dict[int, int], brokers: list[tuple[int, str, int, None]] = BROKERS) -> Any:
    """A MetadataResponse v5 for topic ``t``: partition -> leader (ISR: the leader alone)."""
    partitions: list[tuple[Any, ...]] = [
        (0, p, leader, [1, 2, 3], [leader], []) for p, leader in partition_leaders.items()]
    return MetadataResponse_v5(0, brokers, "cluster", 1, [(0, "t", False, partitions)])


def find_coordinator(error_code: int, node: int) -> Any:
    return FindCoordinatorResponse_v1(0, error_code, None, node, "127.0.0.1", 9090 + node)


def test_the_leaders_most_brokers_name_win_over_a_stale_leader() -> None:
    # Broker 2 was cut off while it led partitions 0 and 2; 1 and 3 elected 3 and 1 instead.
    stale = metadata({0: 2, 1: 3, 2: 2})
    current = metadata({0: 3, 1: 3, 2: 1}, BROKERS[0::2])  # broker 2 fenced: no longer listed
    for order in ([2, 1, 3], [1, 2, 3], [1, 3, 2]):
        answers = {n: stale if n == 2 else current for n in order}
        assert leaders(majority_metadata(answers)) == {("t", 0, 3), ("t", 1, 3), ("t", 2, 1)}, order


def test_agreeing_brokers_give_their_common_view() -> None:
    same = {n: metadata({0: 1, 1: 2, 2: 3}) for n in (1, 2, 3)}
    assert leaders(majority_metadata(same)) == {("t", 0, 1), ("t", 1, 2), ("t", 2, 3)}


def test_a_topic_error_names_no_leader() -> None:
    response = MetadataResponse_v5(0, BROKERS, "cluster", 1, [(3, "missing", False, [])])
    assert leaders(response) == frozenset()


def test_the_coordinator_most_brokers_name_wins() -> None:
    answers = {2: find_coordinator(0, 2), 1: find_coordinator(0, 3), 3: find_coordinator(0, 3)}
    assert majority_coordinator(answers) == 3
    # A broker that could not say (coordinator loading elsewhere) has no vote.
    assert majority_coordinator({1: find_coordinator(15, -1), 3: find_coordinator(0, 1)}) == 1


def test_no_coordinator_named_raises_what_the_brokers_said() -> None:
    with pytest.raises(CoordinatorNotAvailableError):
        majority_coordinator({1: find_coordinator(15, -1), 3: find_coordinator(15, -1)})
    with pytest.raises(NodeNotReadyError):  # retriable: aiokafka asks again
        majority_coordinator({})


def test_the_produce_errors_of_a_stale_leader_are_recognised() -> None:
    def produce_response(*error_codes: int) -> Any:
        partitions = [(p, code, -1, -1, -1) for p, code in enumerate(error_codes)]
        return ProduceResponse_v7([("t", partitions)], 0)

    assert _stale_leader_error(produce_response(0, 19)) == 19  # NotEnoughReplicas
    assert _stale_leader_error(produce_response(7)) == 7  # RequestTimedOut: no follower acked
    assert _stale_leader_error(produce_response(20, 0)) == 20  # NotEnoughReplicasAfterAppend
    assert _stale_leader_error(produce_response(0, 0)) is None
    assert _stale_leader_error(produce_response(6)) is None  # NotLeader: aiokafka refreshes itself
    assert _stale_leader_error(None) is None  # acks=0: no response


async def test_clients_built_by_scorer_kafka_ask_every_broker(kafka: KafkaBroker) -> None:
    """On a real broker: the factories' clients are MajorityViewClients, asking every known
    broker answers with each broker's view, and records still go out and come back."""
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    topic = f"view.{uuid.uuid4().hex[:10]}"
    await kafka.acreate_topic(topic, 2)
    producer = make_producer(settings)
    assert isinstance(producer.client, MajorityViewClient)
    await producer.start()
    try:
        answers = await producer.client._ask_all(MetadataRequest([topic]), leaders)
        (node, answer), = answers.items()
        assert {(t, p) for t, p, _ in leaders(answer)} == {(topic, 0), (topic, 1)}
        assert {leader for _, _, leader in leaders(answer)} == {node}
        await producer.send_and_wait(topic, b"v", key=b"k", partition=1)
    finally:
        await producer.stop()
    reader = make_reader(settings, "view-test")
    assert isinstance(reader._client, MajorityViewClient)
    await reader.start()
    try:
        tp = TopicPartition(topic, 1)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        record = await reader.getone()
        assert (record.key, record.value) == (b"k", b"v")
    finally:
        await reader.stop()


def test_a_coordinator_that_only_says_wait_is_reported_as_no_longer_coordinating() -> None:
    """What aiokafka gets once most brokers name another coordinator: NOT_COORDINATOR where
    the stale one said "wait" (it then looks the coordinator up again), other codes kept."""
    add = AddPartitionsToTxnResponse_v0(0, [("t", [(0, 51), (1, 0)]), ("u", [(0, 14)])])
    assert _as_not_coordinator(add).errors == [("t", [(0, 16), (1, 0)]), ("u", [(0, 16)])]
    assert _as_not_coordinator(EndTxnResponse_v0(0, 51)).error_code == 16
    assert _as_not_coordinator(EndTxnResponse_v0(0, 47)).error_code == 47  # fenced: not a wait
    commit = TxnOffsetCommitResponse_v0(0, [("t", [(2, 7)])])
    assert _error_codes(commit) == {7}
    assert _as_not_coordinator(commit).errors == [("t", [(2, 16)])]


def test_only_coordinator_requests_are_checked_against_the_majority() -> None:
    add = AddPartitionsToTxnRequest(transactional_id="tx", producer_id=1, producer_epoch=0, topics=[("t", [0])])
    assert _coordination_key(add) == (CoordinationType.TRANSACTION, "tx")
    commit = TxnOffsetCommitRequest(transactional_id="tx", group_id="g", producer_id=1, producer_epoch=0, topics=[])
    assert _coordination_key(commit) == (CoordinationType.GROUP, "g")
    assert _coordination_key(MetadataRequest(["t"])) is None


async def test_connections_to_a_broker_the_cluster_no_longer_lists_are_closed(kafka: KafkaBroker) -> None:
    """What waits on a broker that was fenced (dead or cut off) fails at once instead of at
    its request timeout. On a real broker: a second connection filed under a broker id the
    metadata does not list is closed by a refresh; the listed broker's stays open."""
    producer = make_producer(KafkaSettings(bootstrap_servers=kafka.bootstrap))
    await producer.start()
    try:
        client = producer.client
        (node, answer), = (await client._ask_all(MetadataRequest(None), leaders)).items()  # one broker
        listed = await client._get_conn(node)
        broker = client.cluster.broker_metadata(node)
        unlisted = await create_conn(broker.host, broker.port)
        client._conns[(node + 1000, ConnectionGroup.DEFAULT)] = unlisted
        assert unlisted.connected()
        client._drop_unlisted(answer)  # what a refresh does with the view it took
        assert not unlisted.connected() and listed.connected()
    finally:
        await producer.stop()
