"""Quorum alpha service: momentum, breakout, Bollinger, pairs and book-imbalance signals into ``signals.raw``."""
