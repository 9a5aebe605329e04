"""Quorum risk service: the Python pre-trade layer (brief §5) with the persisted trading state machine."""
