"""The logic of sending dead letters back (quorum_common.bus.redrive; against the broker:
tests/integration/test_dlq_redrive.py): which letters go back, who handles them, and that history leaves them out."""

from __future__ import annotations

from quorum_common.bus.deadletter import REDRIVEN_FOR_HEADER, REDRIVEN_FROM_HEADER, DeadLetter, meant_for
from quorum_common.bus.history import decode_history
from quorum_common.bus.redrive import Letter, why_not_redriven
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.testing.samples import sample_record

CODEC = TopicCodec()
BAR = CODEC.encode("md.bars", sample_record(CODEC.catalog.schema_for("md.bars"), seed=1))


class Raw:
    """A consumed record as confluent-kafka gives it (only what decode_history reads)."""

    def __init__(self, value: bytes, headers: list[tuple[str, bytes]] | None) -> None:
        self._value, self._headers = value, headers

    def topic(self) -> str:
        return "md.bars"

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"S0"

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def letter(payload: bytes, reason: str) -> Letter:
    return Letter(0, 0, b"S0", payload, DeadLetter("md.bars", "S0", payload, reason, "", "alpha").dlq_headers())


def test_only_letters_their_reader_refused_and_this_build_decodes_go_back() -> None:
    assert why_not_redriven(CODEC, "md.bars", letter(BAR, "handler_error")) is None
    assert why_not_redriven(CODEC, "md.bars", letter(BAR, "decode_error")) is None
    assert "CorruptMessageError" in why_not_redriven(CODEC, "md.bars", letter(b"\x00junk", "decode_error"))
    assert "refused for its content (non_positive_price)" in why_not_redriven(
        CODEC, "md.bars", letter(BAR, "non_positive_price"))
    wrong = CODEC.encode("signals.raw", sample_record(CODEC.catalog.schema_for("signals.raw"), seed=1))
    assert "WrongSchemaError" in why_not_redriven(CODEC, "md.bars", letter(wrong, "decode_error"))


def test_a_letter_sent_back_is_handled_by_the_service_that_refused_it_alone() -> None:
    assert meant_for({}, "alpha") and meant_for({"traceparent": "x"}, "regime")
    assert meant_for({REDRIVEN_FOR_HEADER: "alpha"}, "alpha")
    assert not meant_for({REDRIVEN_FOR_HEADER: "alpha"}, "regime")


def test_history_leaves_a_letter_sent_back_out() -> None:
    assert decode_history(CODEC, Raw(BAR, None)) is not None
    assert decode_history(CODEC, Raw(BAR, [("traceparent", b"00-x")]), headers=True).headers == {"traceparent": "00-x"}
    assert decode_history(CODEC, Raw(BAR, [(REDRIVEN_FROM_HEADER, b"dlq.md.bars/0/3")])) is None
