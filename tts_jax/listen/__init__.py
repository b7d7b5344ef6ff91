"""Listening to models: a static samples page, MUSHRA / MOS / A-B tests in the browser, and
their statistics.

``tts-jax listen page`` (:mod:`.page`) renders systems (sweep runs, workdirs, exported models,
folders of wavs) on the same sentences beside the reference; ``tts-jax listen serve``
(:mod:`.server`) runs a test defined in a TOML file (:mod:`.design`) over that folder, every
answer stored in SQLite (:mod:`.store`); ``tts-jax listen results`` (:mod:`.results`) turns the
ratings into tables with intervals (:mod:`.stats`).
"""
