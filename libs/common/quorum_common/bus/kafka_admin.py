"""Creating the catalog's topics (and their dead-letter topics) on a Kafka cluster, and keeping the configuration of
those that exist in line with the catalog."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic
from quorum_common.schemas import TopicCatalog, TopicSpec, dlq_topic

log = logging.getLogger(__name__)


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """Broker-side topic configuration of a catalog entry."""
    optional = {"min.compaction.lag.ms": spec.min_compaction_lag_ms, "max.message.bytes": spec.max_message_bytes}
    return {"cleanup.policy": spec.cleanup_policy, "retention.ms": str(spec.retention_ms),
            **{name: str(value) for name, value in optional.items() if value is not None}}


OPTIONAL_CONFIGS = ("min.compaction.lag.ms", "max.message.bytes")
"""Topic settings a catalog entry may leave to the broker's default: one it leaves out loses its override when
aligned."""


def dlq_configs(spec: TopicSpec) -> dict[str, str]:
    """Broker-side configuration of a catalog entry's dead-letter topic: it keeps what it holds, and takes records as
    large as its topic does."""
    size = {"max.message.bytes": str(spec.max_message_bytes)} if spec.max_message_bytes is not None else {}
    return {"cleanup.policy": "delete", "retention.ms": "-1", **size}


def _wanted(catalog: TopicCatalog, prefix: str, only: set[str] | None) -> list[tuple[str, TopicSpec, dict[str, str]]]:
    """(broker topic, catalog entry, configuration) of each catalog topic in ``only`` and of its dead-letter topic."""
    return [(name, spec, configs) for spec in catalog if only is None or spec.name in only
            for name, configs in ((prefix + spec.name, topic_configs(spec)),
                                  (prefix + dlq_topic(spec.name), dlq_configs(spec)))]


def ensure_topics(
    client_config: dict[str, str],
    catalog: TopicCatalog,
    prefix: str = "",
    replication_factor: int = 1,
    timeout_s: float = 30.0,
    only: set[str] | None = None,
    align: bool = False,
    check_partitions: bool = True,
) -> list[str]:
    """Create every catalog topic (or those in ``only``) and its ``dlq.`` topic under ``prefix``.

    Returns the names created. Topics that already exist keep their partitions (one whose count is not the catalog's
    is named in a warning: Kafka cannot take partitions away, so only recreating it, e.g. ``kafka_local down --purge``,
    follows the catalog; ``check_partitions=False``: no warning, as for a service, which only creates what is missing,
    on a broker whose counts may differ from the catalog on purpose: the local one's ``local_partitions``); with
    ``align`` their configuration is set to the catalog's (:func:`align_topic_configs`:
    the topics job and ``make kafka-up``; a service only creates what is missing). Any other failure raises with the
    topic's name.
    """
    admin = AdminClient(client_config)
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted: list[NewTopic] = []
    topics = _wanted(catalog, prefix, only)
    for name, spec, configs in topics:
        found = existing.get(name)
        if found is None:
            wanted.append(NewTopic(name, num_partitions=spec.partitions, replication_factor=replication_factor,
                                   config=configs))
        elif check_partitions and name == prefix + spec.name and len(found.partitions) != spec.partitions:
            log.warning(f"topic {name} has {len(found.partitions)} partitions, the catalog {spec.partitions} (Kafka "
                        "cannot take partitions away: recreate the topic to follow the catalog)", extra={
                            "topic": name, "partitions": len(found.partitions), "catalog": spec.partitions})
    if align:
        align_topic_configs(admin, [(name, configs) for name, _spec, configs in topics if name in existing], timeout_s)
    created: list[str] = []
    if not wanted:
        return created
    for name, fut in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc
    if created:
        log.info("created topics", extra={"count": len(created), "prefix": prefix})
    return sorted(created)


def align_topic_configs(admin: AdminClient, topics: list[tuple[str, dict[str, str]]],
                        timeout_s: float = 30.0) -> list[tuple[str, str, str | None, str | None]]:
    """Set each existing topic's configuration to ``configs`` where the broker's differs (a cluster made before a
    catalog change: a new compaction lag, a larger message size), and drop an override of a setting of
    :data:`OPTIONAL_CONFIGS` that ``configs`` leaves to the broker's default. Other settings are left as they are.
    Returns and logs each change as (topic, setting, old value, new value; None: the broker's default); raises with
    the topic's name when the broker refuses one."""
    if not topics:
        return []
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name) for name, _ in topics],
                                       request_timeout=timeout_s)
    current = {resource.name: future.result(timeout_s) for resource, future in described.items()}
    changes: list[tuple[str, str, str | None, str | None]] = []
    resources: list[ConfigResource] = []
    for name, configs in topics:
        have = current[name]
        entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                   for key, value in configs.items() if have[key].value != value]
        changes += [(name, e.name, have[e.name].value, e.value) for e in entries]
        dropped = [key for key in OPTIONAL_CONFIGS  # set on the topic itself, not a broker-wide default
                   if key not in configs and have[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value]
        entries += [ConfigEntry(key, "", incremental_operation=AlterConfigOpType.DELETE) for key in dropped]
        changes += [(name, key, have[key].value, None) for key in dropped]
        if entries:
            resources.append(ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries))
    for resource, future in (admin.incremental_alter_configs(resources).items() if resources else ()):
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            raise RuntimeError(f"could not align the configuration of topic {resource.name}: {exc}") from exc
    for name, key, old, new in changes:
        log.info("topic configuration aligned with the catalog",
                 extra={"topic": name, "config": key, "old": old, "new": new})
    return changes


def delete_topics(client_config: dict[str, str], names: list[str], timeout_s: float = 30.0) -> None:
    """Delete ``names`` (used to clean up isolated test or replay prefixes)."""
    if not names:
        return
    admin = AdminClient(client_config)
    for name, fut in admin.delete_topics(names, request_timeout=timeout_s).items():
        try:
            fut.result()
        except KafkaException as exc:
            log.warning("could not delete topic", extra={"topic": name, "error": str(exc)})


def delete_catalog_topics(client_config: dict[str, str], catalog: TopicCatalog, prefix: str,
                          timeout_s: float = 30.0) -> None:
    """Delete every catalog topic and its ``dlq.`` topic under ``prefix`` (the undo of :func:`ensure_topics`)."""
    if not prefix:
        raise ValueError("refusing to delete the unprefixed catalog topics: give the prefix of a test or replay")
    delete_topics(client_config, [prefix + n for t in catalog for n in (t.name, dlq_topic(t.name))], timeout_s)


def main() -> int:
    """``python -m quorum_common.bus.kafka_admin``: create every catalog topic, and set the configuration of those
    that exist to the catalog's (the Helm chart's Job, at every install and upgrade).

    Connection settings come from ``QUORUM_*`` variables; ``QUORUM_TOPIC_REPLICATION`` sets the
    replication factor (default 1).
    """
    import os

    from quorum_common.runtime.config import ServiceSettings, load_settings
    from quorum_common.schemas import default_catalog

    settings = load_settings(ServiceSettings)
    replication = int(os.environ.get("QUORUM_TOPIC_REPLICATION", "1"))
    created = ensure_topics(settings.kafka_client_config(), default_catalog(), settings.topic_prefix, replication,
                            align=True)
    print(f"{len(created)} topics created; every catalog topic exists, configured as the catalog says")
    return 0


_TRANSIENT_ERRORS = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                     KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.NOT_COORDINATOR,
                     KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE)
"""Errors of a broker that has just started, a topic or a consumer group just created, before its leaders are
elected or its group coordinator is ready."""


def consumer_group(topic_prefix: str, service: str) -> str:
    """The consumer group of ``service`` (its topics' isolation prefix included)."""
    return f"{topic_prefix}{service}"


def committed_offsets(admin: AdminClient, group: str, partitions: list[TopicPartition],
                      timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    """The offsets ``group`` has committed on ``partitions``, per (topic, partition) (negative: none yet)."""
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)],
                                               request_timeout=timeout_s)[group]
    return {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions}


def _retrying(call: Callable[[], Any], timeout_s: float) -> Any:
    """``call()``, retried while it fails with a transient error of a broker just started or a topic or consumer
    group just created (no partition leader or group coordinator yet), up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0]
            transient = err.retriable() or err.code() in _TRANSIENT_ERRORS
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def partitions_of(consumer: Any, physical: str) -> list[TopicPartition]:
    """The partitions of the broker topic ``physical``, in order; none when the topic does not exist (yet)."""
    meta = consumer.list_topics(physical, timeout=10).topics.get(physical)
    if meta is None or meta.error is not None:
        return []
    return [TopicPartition(physical, p) for p in sorted(meta.partitions)]


def watermark_offsets(consumer: Any, tp: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """``(low, high)`` offsets of a partition, retrying the transient errors of a just-created topic
    (e.g. ``NOT_LEADER_FOR_PARTITION`` while its leader is being elected)."""
    return _retrying(lambda: consumer.get_watermark_offsets(tp, timeout=min(10.0, timeout_s)), timeout_s)


def group_committed(consumer: Any, partitions: list[TopicPartition], timeout_s: float = 30.0) -> list[TopicPartition]:
    """The offsets the group of ``consumer`` has committed on ``partitions`` (negative: none), retrying the
    transient errors of a group whose coordinator is not ready yet (e.g. ``NOT_COORDINATOR``)."""
    return _retrying(lambda: consumer.committed(partitions, timeout=min(10.0, timeout_s)), timeout_s)

if __name__ == "__main__":
    raise SystemExit(main())
