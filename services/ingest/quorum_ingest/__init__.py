"""Quorum ingest service: market data into ``md.bars``."""
