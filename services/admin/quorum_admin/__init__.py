"""Quorum admin API: the people's entry point to the desk (halt, resume, reduce-only, flatten, limits, mandate)."""
