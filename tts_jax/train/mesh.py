"""One device mesh with a ``data`` axis over every device of every host.

The train step is ``jax.jit``-ed with the batch sharded along ``data`` and the state
replicated; XLA inserts the gradient all-reduce. The same code runs on one CPU, on N fake CPU
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), on a GPU box and on a
multi-host pod (after ``jax.distributed.initialize()``).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tts_jax.errors import UserError


def make_mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), ("data",))


def data_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if global_batch % n:
        raise UserError(
            f"train.batch_size={global_batch} must be a multiple of the number of devices ({n})"
        )


def to_global(local_batch: dict, sharding: NamedSharding) -> dict:
    """This host's rows (numpy, leading batch axis) -> global arrays sharded over ``data``."""
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in local_batch.items()
    }
