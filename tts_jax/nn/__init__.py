"""Shared layers used by several model families."""
