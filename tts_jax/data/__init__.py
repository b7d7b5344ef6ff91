"""Corpora, TFDS and batching."""
