"""Quorum portfolio service: ledger, optimiser targets, rebalancing, proposed orders and snapshots."""
