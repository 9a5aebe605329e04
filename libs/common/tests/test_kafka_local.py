"""The local broker's helpers that need no broker."""

from __future__ import annotations

from quorum_common import kafka_local


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """The storage tool reads an id starting with '-' as an option and refuses to format the log."""
    draws = iter([b"\xf8" + bytes(15), b"\x00" * 16])  # the first encodes to '-AAAA...', the second to 'AAAA...'
    assert kafka_local.cluster_id(lambda: next(draws)) == "A" * 22


def test_a_cluster_id_is_sixteen_bytes_in_url_safe_base64_without_padding() -> None:
    assert kafka_local.cluster_id(lambda: b"\xff" * 16) == "_" * 21 + "w"
    assert len(kafka_local.cluster_id()) == 22
