"""Joining a multi-host run: ``tts-jax train --distributed``.

Every host runs the same command. The processes find each other from, in order: explicit
flags (``--coordinator HOST:PORT --num-processes N --process-id I``), JAX's own environment
variables (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``), or JAX's
cluster auto-detection (SLURM, Open MPI, Cloud TPU, ...). On CPU the collectives go through
gloo, so the same command runs over processes on one machine (the tests do).
"""

from __future__ import annotations

import os

import jax

from tts_jax.errors import UserError

ENV = {
    "coordinator": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}


def _int(value, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} must be a whole number, got {value!r}") from None


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    heartbeat_seconds: int = 100,
) -> None:
    """Calls ``jax.distributed.initialize`` with what is given, or lets JAX detect the cluster.

    A process that stops answering for ``heartbeat_seconds`` ends the run on every host
    instead of leaving the others waiting in a collective.
    """
    coordinator = coordinator or os.environ.get(ENV["coordinator"]) or None
    num_processes = num_processes or _int(
        os.environ.get(ENV["num_processes"]), ENV["num_processes"]
    )
    if process_id is None:
        process_id = _int(os.environ.get(ENV["process_id"]), ENV["process_id"])
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if any(v is not None for v in given.values()) and any(v is None for v in given.values()):
        missing = [f"--{k.replace('_', '-')} (or {ENV[k]})" for k, v in given.items() if v is None]
        raise UserError(f"--distributed: also give {', '.join(missing)}")
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise UserError(f"--process-id {process_id} must be in [0, {num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator,
            num_processes,
            process_id,
            heartbeat_timeout_seconds=heartbeat_seconds,
        )
    except ValueError as e:  # nothing given and no cluster detected
        raise UserError(
            f"--distributed could not find the other processes ({e}); give --coordinator "
            "HOST:PORT --num-processes N --process-id I, or set " + ", ".join(ENV.values())
        ) from None
