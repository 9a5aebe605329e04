"""Quorum execution service: sends approved orders to a venue and reports what happened to them."""
