"""Who leads what, as most brokers say, not as the one asked says.

A broker cut off from the other brokers and the controller, but still reachable by clients,
keeps answering as the leader of the partitions, and the coordinator of the keys, it had
before the cut: a stale leader. The rest of the cluster has elected others. aiokafka asks
one broker at random for metadata and for a coordinator, and its metadata (up to v5) carries
no leader epoch that would tell an old view from a new one, so one refresh in three takes the
stale view back; a produce request to the stale leader then waits for followers that never
come (``RequestTimedOut``, later ``NotEnoughReplicas`` once it shrinks its ISR), and aiokafka
refreshes metadata on neither. Found by tests/reliability/cluster/test_network_cut.py: the
stale view stalled the clients for minutes.

:class:`MajorityViewClient` asks every known broker at once and takes the answer most of them
share (the brokers still connected to the controller agree), re-reads metadata when a
produce request fails the way a stale leader makes it fail, and looks a transaction or group
coordinator up again when it keeps answering "wait" (``CONCURRENT_TRANSACTIONS``: a stale
transaction coordinator cannot finish the commit it acknowledged; the one the other brokers
elected finishes it) while most brokers name another. Every client built by
:mod:`scorer.kafka.clients` uses it (:func:`use_majority_view`). With one known broker it is
aiokafka's client unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import aiokafka.errors as Errors
from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType
from aiokafka.conn import CloseReason
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.protocol.transaction import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    TxnOffsetCommitRequest,
)

log = logging.getLogger(__name__)

# What a stale leader answers a produce request with acks=all: no follower acknowledges
# (timed out), or, once it dropped them from its ISR, too few replicas in sync.
STALE_LEADER_ERRORS = frozenset({
    Errors.RequestTimedOutError.errno,
    Errors.NotEnoughReplicasError.errno,
    Errors.NotEnoughReplicasAfterAppendError.errno,
})
# A partition stuck on a stale leader is retried every retry backoff (100 ms): one refresh
# a second is enough, and asks every broker, not one.
REFRESH_INTERVAL_S = 1.0
# What a coordinator answers for "ask me again soon". A live coordinator says it for
# milliseconds (the previous transaction's markers being written) or seconds (loading its
# state); a stale one for ever: it cannot finish the previous commit, its markers never reach
# the other brokers, and it never learns that another broker took over its transactions.
COORDINATOR_WAIT_ERRORS = frozenset({
    Errors.ConcurrentTransactions.errno,
    Errors.CoordinatorLoadInProgressError.errno,
    Errors.RequestTimedOutError.errno,
})
# After this long of such answers from one coordinator, ask every broker whether it still is
# the coordinator (and again at most this often while they go on).
COORDINATOR_PATIENCE_S = 2.0


def leaders(response: Any) -> frozenset[tuple[str, int, int]]:
    """(topic, partition, leader) of every partition a MetadataResponse knows."""
    out: set[tuple[str, int, int]] = set()
    for topic_data in response.topics:
        error_code, topic, partitions = topic_data[0], topic_data[1], topic_data[-1]
        if error_code == 0:
            out.update((topic, p[1], p[2]) for p in partitions)
    return frozenset(out)


def coordinator(response: Any) -> tuple[int, int]:
    """(error code, coordinator id) of a FindCoordinatorResponse."""
    return int(response.error_code), int(response.coordinator_id)


def majority_metadata(answers: Mapping[int, Any]) -> Any:
    """The MetadataResponse that agrees most with the others, partition by partition.

    Each (topic, partition, leader) counts as many votes as answers name it; an answer scores
    the votes of what it names. Brokers connected to the controller name the same leaders, so
    their answers outscore a stale broker's, which names itself where they name another. A tie
    (only two answers, one of each) goes to the first answer: nothing tells them apart then.
    """
    votes = collections.Counter(t for answer in answers.values() for t in leaders(answer))
    return max(answers.values(), key=lambda answer: sum(votes[t] for t in leaders(answer)))


def majority_coordinator(answers: Mapping[int, Any]) -> int:
    """The coordinator most FindCoordinator answers name; the first answer's error when none names one."""
    named = collections.Counter(coordinator_id for error, coordinator_id in map(coordinator, answers.values())
                                if error == 0)
    if named:
        return named.most_common(1)[0][0]
    for answer in answers.values():
        raise Errors.for_code(answer.error_code)()
    raise Errors.NodeNotReadyError("no broker answered FindCoordinator")  # retriable: the caller asks again


def _stale_leader_error(response: Any) -> int | None:
    """The first partition error of a ProduceResponse that a stale leader gives, or None."""
    for _topic, partitions in getattr(response, "topics", ()):
        for partition in partitions:
            if partition[1] in STALE_LEADER_ERRORS:
                return int(partition[1])
    return None


def _coordination_key(request: Any) -> tuple[int, str] | None:
    """(coordinator type, key) of a request that only a coordinator answers, else None."""
    if isinstance(request, (AddPartitionsToTxnRequest, AddOffsetsToTxnRequest, EndTxnRequest)):
        return CoordinationType.TRANSACTION, str(request._transactional_id)
    if isinstance(request, TxnOffsetCommitRequest):
        return CoordinationType.GROUP, str(request._group_id)
    return None


def _error_codes(response: Any) -> set[int]:
    """Every error code of a coordinator's response (one code, or one per partition)."""
    if hasattr(response, "error_code"):
        return {int(response.error_code)}
    return {int(code) for _topic, partitions in response.errors for _partition, code in partitions}


def _as_not_coordinator(response: Any) -> Any:
    """The response, its waits turned into NOT_COORDINATOR: what the broker would answer if
    it knew it no longer coordinates; aiokafka then looks the coordinator up again."""
    def code(error: int) -> int:
        return Errors.NotCoordinatorError.errno if error in COORDINATOR_WAIT_ERRORS else error

    if hasattr(response, "error_code"):
        response.error_code = code(response.error_code)
    else:
        response.errors = [(topic, [(partition, code(error)) for partition, error in partitions])
                           for topic, partitions in response.errors]
    return response


def _retrieve(task: asyncio.Future[Any]) -> None:
    # An answer no longer waited for: its error, if any, is not news (logged by aiokafka).
    if not task.cancelled():
        task.exception()


class MajorityViewClient(AIOKafkaClient):  # type: ignore[misc]
    """aiokafka's client, asking every known broker for metadata and coordinators."""

    # Instances become this class after aiokafka built them (use_majority_view): no __init__.
    _stale_refresh_at = 0.0

    async def _ask_all(self, request: Any, agree: Callable[[Any], Hashable]) -> dict[int, Any]:
        """``request`` to every known broker at once. Returns once a majority answered alike,
        else once all answered or failed (a broker nothing reaches fails by the request
        timeout): {node: response}."""
        nodes = [b.nodeId for b in self.cluster.brokers()]
        asked: dict[asyncio.Future[Any], int] = {
            asyncio.ensure_future(self.send(node, request)): node for node in nodes}
        answers: dict[int, Any] = {}
        pending: set[asyncio.Future[Any]] = set(asked)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.cancelled():  # the client is closing
                        continue
                    if task.exception() is None:
                        answers[asked[task]] = task.result()
                    else:
                        log.debug("broker %s did not answer %s: %r", asked[task], type(request).__name__,
                                  task.exception())
                if len(answers) > len(nodes) // 2 and len({agree(a) for a in answers.values()}) == 1:
                    break
        finally:
            # Left to finish (by the request timeout at the latest), also when this is cancelled
            # (the client closing): their errors are not news.
            for task in pending:
                task.add_done_callback(_retrieve)
        return answers

    def _single(self) -> bool:
        """One known broker (or only the bootstrap connection): nothing to compare."""
        bootstrap = ("bootstrap", ConnectionGroup.DEFAULT) in self._conns
        return bootstrap or len(self.cluster.brokers()) < 2

    async def _metadata_update(self, cluster_metadata: Any, topics: Any) -> bool:
        if self._single():
            return bool(await super()._metadata_update(cluster_metadata, topics))
        answers = await self._ask_all(MetadataRequest(list(topics) if topics else None), leaders)
        if not answers:
            log.error("Unable to update metadata from any of %s", [b.nodeId for b in self.cluster.brokers()])
            cluster_metadata.failed_update(None)
            return False
        chosen = majority_metadata(answers)
        if len({leaders(a) for a in answers.values()}) > 1:
            log.warning("brokers disagree on partition leaders (a stale leader?): took the view of %s of %s",
                        sum(leaders(a) == leaders(chosen) for a in answers.values()), len(answers))
        if not chosen.brokers:  # a topic still being created: as aiokafka, keep the old view
            return False
        cluster_metadata.update_metadata(chosen)
        self._drop_unlisted(chosen)
        return True

    def _drop_unlisted(self, chosen: Any) -> None:
        """Close the connections to brokers the cluster no longer lists (fenced: dead, or cut
        off from the controller). What waits on one of them, a produce or a coordinator
        request that no answer will end before the request timeout (40 s), fails at once and
        is retried where the cluster says; two such waits in a row outlast an exactly-once
        producer's transaction timeout (60 s), which fences it."""
        listed = {broker[0] for broker in chosen.brokers}
        for (node_id, group), conn in list(self._conns.items()):
            if isinstance(node_id, int) and node_id not in listed:
                log.warning("broker %s is no longer in the cluster's metadata: closing its connection (%s)",
                            node_id, group.name)
                conn.close(reason=CloseReason.CONNECTION_BROKEN)

    async def coordinator_lookup(self, coordinator_type: int, coordinator_key: str) -> int:
        if self._single():
            return int(await super().coordinator_lookup(coordinator_type, coordinator_key))
        answers = await self._ask_all(FindCoordinatorRequest(coordinator_key, coordinator_type), coordinator)
        return majority_coordinator(answers)

    async def send(self, node_id: Any, request: Any, *, group: ConnectionGroup = ConnectionGroup.DEFAULT) -> Any:
        try:
            response = await super().send(node_id, request, group=group)
        except Errors.RequestTimedOutError:
            if isinstance(request, ProduceRequest):
                self._refresh_after_stale_leader(node_id, Errors.RequestTimedOutError.errno)
            raise
        if isinstance(request, ProduceRequest) and (error := _stale_leader_error(response)) is not None:
            self._refresh_after_stale_leader(node_id, error)
        elif (key := _coordination_key(request)) is not None and await self._no_longer_coordinator(
                node_id, key, waiting=bool(_error_codes(response) & COORDINATOR_WAIT_ERRORS)):
            response = _as_not_coordinator(response)
        return response

    async def _no_longer_coordinator(self, node_id: Any, key: tuple[int, str], *, waiting: bool) -> bool:
        """Whether most brokers name another coordinator for ``key`` than ``node_id``, which has
        answered "wait" for COORDINATOR_PATIENCE_S (asked at most that often)."""
        waits: dict[tuple[Any, int, str], float] = self.__dict__.setdefault("_coordinator_waits", {})
        if not waiting or self._single():
            waits.pop((node_id, *key), None)
            return False
        now = time.monotonic()
        since = waits.setdefault((node_id, *key), now)
        if now - since < COORDINATOR_PATIENCE_S:
            return False
        waits[(node_id, *key)] = now  # the next check after another COORDINATOR_PATIENCE_S
        answers = await self._ask_all(FindCoordinatorRequest(key[1], key[0]), coordinator)
        try:
            named = majority_coordinator(answers)
        except Errors.KafkaError:
            return False
        if named == node_id:
            return False
        log.warning("coordinator %s of %s kept answering 'wait' for %.0f s while most brokers name %s "
                    "(a stale coordinator): looking it up again", node_id, key[1], now - since, named)
        waits.pop((node_id, *key), None)
        return True

    def _refresh_after_stale_leader(self, node_id: Any, error: int) -> None:
        now = time.monotonic()
        if now - self._stale_refresh_at < REFRESH_INTERVAL_S:
            return
        self._stale_refresh_at = now
        log.info("produce to broker %s failed with %s: re-reading who leads what from every broker",
                 node_id, Errors.for_code(error).__name__)
        self.force_metadata_update()


def use_majority_view(client: AIOKafkaClient) -> None:
    """Make an aiokafka client built by a producer, consumer or admin client a
    :class:`MajorityViewClient` (they build their own and take no class to build)."""
    client.__class__ = MajorityViewClient
