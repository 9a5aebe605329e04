"""Quorum alpha service: signals from market data into ``signals.raw``."""
