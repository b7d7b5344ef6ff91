"""tts_jax: neural speech synthesis in JAX/Flax."""

__version__ = "0.1.0"
