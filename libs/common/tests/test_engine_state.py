"""Sealed checkpoints (engine_state.seal / unseal): a checkpoint is unpickled only when its HMAC tag matches the
service's key, so one written by whoever lacks the key (or altered on the way) never runs code in the service."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from quorum_common.engine import Engine
from quorum_common.engine_state import TAG_BYTES, CheckpointForged, CheckpointMismatch, seal, unseal

KEY = b"0123456789abcdef-desk"


class Counter(Engine):
    """A probe engine whose state is a count and a list."""

    inputs = ("md.bars",)
    rebuilds_from_history = True

    def __init__(self, publisher: Any = None) -> None:
        super().__init__(publisher)
        self.settings = None
        self.count, self.seen = 0, []

    def handle(self, msg: Any) -> None:
        self.count += 1


class Touch:
    """Unpickled, it creates a file: what a forged checkpoint could run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_sealed_checkpoint_restores_under_its_key() -> None:
    live = Counter()
    live.count, live.seen = 7, ["a", "b"]
    sealed = seal(live.checkpoint(), KEY)
    fresh = Counter()
    fresh.restore(unseal(sealed, KEY))
    assert (fresh.count, fresh.seen) == (7, ["a", "b"])


@pytest.mark.parametrize("tamper", ["other key", "flipped byte", "tag only", "cut short", "unsealed"])
def test_a_checkpoint_that_fails_its_tag_is_never_unpickled(tmp_path: Path, tamper: str) -> None:
    marker = tmp_path / "ran"
    evil = zlib.compress(pickle.dumps(Touch(marker)))
    assert not marker.exists()
    sealed = {
        "other key": seal(evil, b"an attacker's own key"),
        "flipped byte": (lambda b: b[:-1] + bytes([b[-1] ^ 1]))(seal(evil, KEY)),
        "tag only": seal(evil, KEY)[:TAG_BYTES],
        "cut short": seal(evil, KEY)[:TAG_BYTES - 1],
        "unsealed": evil,
    }[tamper]
    with pytest.raises(CheckpointForged, match="tag does not match"):
        Counter().restore(unseal(sealed, KEY))
    assert not marker.exists()
    # The probe is a real exploit: sealed with the right key, unpickling it runs the call.
    with pytest.raises(Exception):  # noqa: B017 - the header check fails after the file was made
        Counter().restore(unseal(seal(evil, KEY), KEY))
    assert marker.exists()


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes, not 5"):
        seal(b"state", b"short")


def test_while_the_key_is_rotated_a_checkpoint_sealed_with_the_previous_one_still_restores() -> None:
    old, new = b"the key before the rotation", b"the key after the rotation"
    before = seal(Counter().checkpoint(), old)
    Counter().restore(unseal(before, new, previous=old))
    with pytest.raises(CheckpointForged):
        unseal(before, new)  # once the rotation is over, the old key's checkpoints are refused
    with pytest.raises(CheckpointForged):
        unseal(seal(Counter().checkpoint(), b"neither of the two keys"), new, previous=old)


class Publisher:
    """A stand-in publisher: it must come back as the live engine's own, not as a copy."""


def test_the_engine_and_its_publisher_come_back_as_the_live_ones() -> None:
    live = Counter(Publisher())
    live.seen = [live.handle, {"publisher": live.publisher, "engine": live}, None]
    fresh = Counter(Publisher())
    fresh.restore(live.checkpoint())
    method, refs, none = fresh.seen
    assert method.__self__ is fresh and refs["publisher"] is fresh.publisher and refs["engine"] is fresh
    assert none is None


def test_a_checkpoint_of_another_state_version_is_refused_and_changes_nothing() -> None:
    live = Counter()
    live.count = 7
    data = live.checkpoint()

    class Reshaped(Counter):
        state_version = 2

    Reshaped.__qualname__ = Counter.__qualname__  # the same engine name: only the state version differs
    fresh = Reshaped()
    with pytest.raises(CheckpointMismatch, match="another state 1 \\(this service: 2\\)"):
        fresh.restore(data)
    assert fresh.count == 0


def test_the_live_reference_refuses_to_run_outside_a_restore() -> None:
    live = Counter(Publisher())
    live.seen = [live.publisher]
    plain = pickle.Unpickler(io.BytesIO(zlib.decompress(live.checkpoint())))
    assert plain.load()["engine"].endswith("Counter")  # the header
    with pytest.raises(pickle.UnpicklingError, match="only while a checkpoint is restored"):
        plain.load()  # the state
