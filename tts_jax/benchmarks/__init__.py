"""Benchmarks for ``tts-jax bench``: each module registers its own with tts_jax.bench.register."""
