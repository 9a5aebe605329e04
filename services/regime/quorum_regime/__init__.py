"""Quorum regime service: hidden-Markov market regimes from ``md.bars`` into ``regime.state``."""
