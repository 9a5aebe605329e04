"""Quorum desk: the embedded run of every agent in one process."""
