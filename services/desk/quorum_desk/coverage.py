"""A replay holds data for every symbol the mandate trades, or the run is refused before it starts.

A mandate may name any symbol (a live desk trades what its exchange lists), but a replay of the bundled data sets
has bars only for theirs: a mandate symbol outside them (a typo such as ``EURUSD`` for ``EUR-USD``, or a stock that
is not bundled) would never get a bar, a signal or a weight, and the run would say nothing about it, or blame its
history for the missing trades. A symbol left out on purpose (``QUORUM_SYMBOLS`` narrowing the replay to part of
the data sets) is not refused: the narrowing is the user's choice.
"""

from __future__ import annotations

from typing import Any

from quorum_common.runtime.config import ConfigError, load_settings
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import DATASETS
from quorum_manager.config import ManagerSettings
from quorum_manager.mandate import parse_mandate, read_mandate_text


def check_replay_covers_mandate(overrides: dict[str, dict[str, Any]]) -> set[str] | None:
    """Raise :class:`ConfigError` naming the mandate's universe symbols no replayed data set holds; return the symbols
    the replayed data sets hold (None, and no check, when the ingest polls an exchange live). ``overrides`` are the
    run's settings overrides by service. ``quorum-desk up`` gives the symbols to the admin API, which refuses a
    ``PUT /mandate`` naming another."""
    ingest = load_settings(IngestSettings, **overrides.get("ingest", {}))
    if ingest.mode != "replay":
        return None
    held = {symbol for name in ingest.datasets for symbol in DATASETS[name].symbols}
    path = load_settings(ManagerSettings, **overrides.get("manager", {})).mandate_path
    mandate = parse_mandate(read_mandate_text(path))  # the packaged default when path is None
    missing = [member.symbol for member in mandate.universe if member.symbol not in held]
    if missing:
        one = len(missing) == 1
        elsewhere = [f"{symbol} is in the bundled data set {name}" for symbol in missing
                     for name, data in DATASETS.items() if symbol in data.symbols]
        raise ConfigError(
            f"mandate {path or '(packaged default)'}: universe: {', '.join(missing)} {'is' if one else 'are'} in "
            f"none of the replayed data sets ({', '.join(ingest.datasets)}), so the desk would never trade "
            f"{'it' if one else 'them'}{''.join(f'; {x}' for x in elsewhere)}; the replayed symbols: "
            f"{', '.join(sorted(held))} (QUORUM_DATASETS chooses the data sets replayed)")
    return held
