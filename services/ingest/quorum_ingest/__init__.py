"""Quorum ingest service: bundled real data replay and live ccxt polling into ``md.bars``, ``md.ticks``,
``md.book`` and ``sys.clock``, with data-quality rejects sent to ``dlq.md.bars`` / ``dlq.md.ticks``."""
