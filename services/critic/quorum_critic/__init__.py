"""Quorum critic service: execution quality, agent attribution and tighten-only risk commands."""
