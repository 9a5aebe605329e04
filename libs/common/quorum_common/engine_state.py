"""An engine's state as bytes, and back: the checkpoints a lockstep service writes to ``state.checkpoints``.

A checkpoint is the engine's attributes (``__dict__``) pickled and compressed, less those the live instance keeps
(:attr:`quorum_common.engine.Engine.transient`: its settings, worker pools, hooks set by instrumentation). The engine
itself and its publisher are pickled as references and resolved to the live instance's on loading, so a bound method
kept in the state (a handler table) is bound to the live engine again. A checkpoint records which engine class, which
version of its state (:attr:`~quorum_common.engine.Engine.state_version`) and which domain settings it was taken with
(their digest, transport settings left out) and the encoding's version; it is restored only into the same engine with
the same state version and settings, so a service restarted with other settings rebuilds from
its whole history instead of going on from a state its settings would not have produced.

Pickle runs code named in the data, so a checkpoint travels sealed (:func:`seal`): an HMAC-SHA256 tag of the bytes
under the desk's checkpoint key (``QUORUM_CHECKPOINT_KEY``, a Secret), checked (:func:`unseal`) before anything is
decompressed or unpickled. Whoever may write ``state.checkpoints`` but lacks the key cannot make a service run code.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
import zlib
from typing import Any

CHECKPOINT_FORMAT = 3
"""Version of the encoding below (2: sealed; 3: live references by ``reducer_override``, and the engine's
``state_version`` in the header); a checkpoint of another version is not restored."""
_ENGINE, _PUBLISHER = "engine", "publisher"


TAG_BYTES = 32
"""Length of a sealed checkpoint's HMAC-SHA256 tag, which comes before the state."""
MIN_KEY_BYTES = 16
"""The shortest checkpoint key accepted."""


class CheckpointMismatch(ValueError):
    """A checkpoint of another engine, another state version, other settings or another encoding: the message says
    which."""


class CheckpointForged(ValueError):
    """A sealed checkpoint whose tag does not match its bytes under this service's key (written with another key,
    altered, or cut short): nothing of it was unpickled."""


def _tag(data: bytes, key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a checkpoint key must have at least {MIN_KEY_BYTES} bytes, not {len(key)}")
    return hmac.new(key, data, hashlib.sha256).digest()


def seal(state: bytes, key: bytes) -> bytes:
    """``state`` (of :func:`dump_state`) behind its HMAC-SHA256 tag under ``key``: what a checkpoint record carries."""
    return _tag(state, key) + state


def unseal(sealed: bytes, key: bytes, previous: bytes | None = None) -> bytes:
    """The state inside a :func:`seal`-ed checkpoint, once its tag is checked (in constant time) against ``key`` or,
    while the key is being rotated, the ``previous`` one; :class:`CheckpointForged` when neither matches."""
    tag, state = sealed[:TAG_BYTES], sealed[TAG_BYTES:]
    if len(tag) < TAG_BYTES or not any(hmac.compare_digest(tag, _tag(state, k)) for k in (key, previous) if k):
        raise CheckpointForged("the checkpoint's tag does not match its state under this service's checkpoint key "
                               "(another key, or altered): it is not unpickled")
    return state


def engine_name(engine: object) -> str:
    """``module.Class`` of an engine: what a checkpoint records and checks."""
    return f"{type(engine).__module__}.{type(engine).__qualname__}"


def settings_digest(settings: Any) -> str:
    """A digest of an engine's domain settings (a pydantic settings object; the fields every service shares, which
    say how it connects and runs rather than what it decides, are left out); '' without settings."""
    if settings is None:
        return ""
    from quorum_common.runtime.config import ServiceSettings

    domain = type(settings).model_fields.keys() - ServiceSettings.model_fields.keys()
    return hashlib.sha256(settings.model_dump_json(include=domain).encode()).hexdigest()[:16]


def _live_reference(name: str) -> Any:
    """Stands in a checkpoint for the engine or its publisher; :class:`_Unpickler` resolves it to the live instance's
    (called any other way, it refuses)."""
    raise pickle.UnpicklingError(f"the live {name} is resolved only while a checkpoint is restored")


class _Pickler(pickle.Pickler):
    """Pickles the engine and its publisher as references to the live ones. ``reducer_override`` is asked only about
    objects of other than the basic types (not None, numbers, str, bytes, exact dicts, lists and tuples), so a state
    of many small values costs no Python call per value, which a ``persistent_id`` would."""

    def __init__(self, file: io.BytesIO, engine: Any) -> None:
        super().__init__(file, protocol=5)
        self._engine = engine

    def reducer_override(self, obj: Any) -> Any:
        if obj is self._engine:
            return _live_reference, (_ENGINE,)
        if obj is self._engine.publisher:
            return _live_reference, (_PUBLISHER,)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, engine: Any) -> None:
        super().__init__(file)
        self._engine = engine

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, _live_reference.__name__):
            return self._resolve
        return super().find_class(module, name)

    def _resolve(self, name: str) -> Any:
        if name == _ENGINE:
            return self._engine
        if name == _PUBLISHER:
            return self._engine.publisher
        raise pickle.UnpicklingError(f"unknown reference {name!r} in a checkpoint")


def _header(engine: Any) -> dict[str, Any]:
    """What a checkpoint is restored only into: the encoding, the engine class and the shape of its state, and its
    domain settings."""
    return {"format": CHECKPOINT_FORMAT, "engine": engine_name(engine), "state": getattr(engine, "state_version", 1),
            "settings": settings_digest(getattr(engine, "settings", None))}


def dump_state(engine: Any, transient: frozenset[str]) -> bytes:
    """``engine``'s attributes but ``transient`` and its publisher, with what they must be restored into."""
    state = {k: v for k, v in vars(engine).items() if k not in transient and k != _PUBLISHER}
    header = _header(engine)
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, engine)
    pickler.dump(header)  # read and checked before the state is
    pickler.dump(state)
    return zlib.compress(buffer.getvalue(), 1)


def load_state(engine: Any, data: bytes) -> None:
    """Put the state of :func:`dump_state` back into ``engine`` (the same engine class with the same settings: else
    :class:`CheckpointMismatch`, and the engine is left as it was)."""
    unpickler = _Unpickler(io.BytesIO(zlib.decompress(data)), engine)
    header = unpickler.load()
    want = _header(engine)
    if header != want:
        differ = ", ".join(f"{k} {header.get(k)!r} (this service: {v!r})" for k, v in want.items()
                           if header.get(k) != v)
        raise CheckpointMismatch(f"the checkpoint was taken with another {differ}")
    vars(engine).update(unpickler.load())
