"""Validation of a mandate document sent to ``PUT /mandate``.

The manager's model (``quorum_manager.mandate.parse_mandate``) validates it field by field when the
manager package is installed; without it, any YAML/JSON mapping is accepted here and the manager
refuses a bad one later (dead-lettering the SET_MANDATE command).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import yaml


class MandateInvalid(ValueError):
    """The document is not an acceptable mandate; ``problems`` lists (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def _mapping_only(text: str) -> None:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MandateInvalid([("document", f"not valid YAML or JSON ({type(exc).__name__})")]) from None
    if not isinstance(raw, dict):
        raise MandateInvalid([("document", "must be a mapping of mandate fields")])


def _manager_validator() -> Callable[[str], None] | None:
    try:
        from quorum_manager.mandate import MandateError, parse_mandate
    except ImportError:
        return None

    def validate(text: str) -> None:
        try:
            parse_mandate(text)
        except MandateError as exc:
            raise MandateInvalid(list(exc.problems)) from None

    return validate


def validate_document(text: str, tradable: Collection[str] | None = None) -> None:
    """Raise :class:`MandateInvalid` naming the field when ``text`` is not a valid mandate, or (``tradable``: the
    symbols the desk has market data for) when its universe names a symbol outside them, which it would never trade."""
    (_manager_validator() or _mapping_only)(text)
    if tradable is None:
        return
    members = yaml.safe_load(text).get("universe")
    symbols = [m.get("symbol") if isinstance(m, dict) else m for m in members] if isinstance(members, list) else []
    missing = [s for s in symbols if isinstance(s, str) and s not in tradable]
    if missing:
        one = len(missing) == 1
        raise MandateInvalid([("universe", f"{', '.join(missing)} {'is' if one else 'are'} not among the symbols this "
                               f"desk has market data for, so it would never trade {'it' if one else 'them'}; "
                               f"its symbols: {', '.join(sorted(tradable))}")])
