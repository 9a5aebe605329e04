"""RecentIds: a repeat is known, memory stays bounded, the oldest ids go first."""

from __future__ import annotations

import pytest
from quorum_common.recent_ids import RecentIds


def test_a_repeat_is_known_and_a_new_id_is_not() -> None:
    ids = RecentIds(capacity=3)
    assert ids.add("a") and ids.add("b")
    assert not ids.add("a")
    assert "b" in ids and "c" not in ids


def test_only_the_last_ids_are_kept_the_oldest_forgotten_first() -> None:
    ids = RecentIds(capacity=3)
    for key in "abcde":
        ids.add(key)
    assert len(ids) == 3
    assert [k for k in "abcde" if k in ids] == ["c", "d", "e"]
    assert ids.add("a"), "forgotten, so new again"


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RecentIds(capacity=0)
