"""Quorum manager service: compiles the mandate and publishes the ensemble decisions."""
