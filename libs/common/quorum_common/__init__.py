"""Shared library of every Quorum service: schemas, codec, bus and service runtime."""
