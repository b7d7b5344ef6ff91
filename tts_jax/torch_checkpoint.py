"""Read a PyTorch checkpoint (``torch.save``) as numpy arrays, without PyTorch.

Both formats ``torch.save`` has written are read:

* the zip archive (PyTorch >= 1.6): ``NAME/data.pkl`` holds the object, tensors refer to
  storages ``NAME/data/KEY`` of raw little-endian values;
* the legacy stream (earlier PyTorch, and ``_use_new_zipfile_serialization=False``): a magic
  number, a protocol version and a system-info pickle, then the object's pickle, then the list
  of storage keys, then each storage as an 8-byte element count and its raw values. The
  published jik876/hifi-gan checkpoints are of this kind.

The pickles are read with an unpickler that knows only what a state dict holds (dicts,
tensors, parameters, storages and plain values); anything else is refused with its name, so
reading a file cannot run code from it. Tensors come back as numpy arrays (a copy, with the
tensor's strides applied).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tts_jax.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> numpy dtype (little-endian, as torch writes on every platform)
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # widened to float32 below
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _Storage:
    """A storage's type and key, until its bytes are known."""

    def __init__(self, dtype: str, key: str):
        self.dtype, self.key = dtype, key


class _Tensor:
    """A tensor's view of a storage, resolved to an array once every storage is read."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), stride

    def array(self, data: dict[str, np.ndarray]) -> np.ndarray:
        flat = data[self.storage.key]
        if not self.size:
            out = flat[self.offset : self.offset + 1].reshape(())
        else:
            item = flat.itemsize
            out = np.lib.stride_tricks.as_strided(
                flat[self.offset :],
                shape=self.size,
                strides=tuple(s * item for s in self.stride),
                writeable=False,
            )
        out = np.array(out)
        if self.storage.dtype == "BFloat16Storage":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # a storage type: only ever used in persistent ids
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise UserError(
            f"{self.path} holds a {module}.{name} object; expected a checkpoint of tensors "
            "(state dicts of torch.save)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UserError(f"{self.path}: unknown persistent object {pid!r:.80}")
        storage_type, key = pid[1], str(pid[2])
        if storage_type not in STORAGE_DTYPES:
            raise UserError(f"{self.path}: tensors of {storage_type!r} are not supported")
        return _Storage(storage_type, key)


def _resolve(obj, data: dict[str, np.ndarray]):
    if isinstance(obj, _Tensor):
        return obj.array(data)
    if isinstance(obj, dict):
        return {k: _resolve(v, data) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(v, data) for v in obj)
    return obj


def _storages(obj, found: dict[str, _Storage]) -> dict[str, _Storage]:
    if isinstance(obj, _Tensor):
        found[obj.storage.key] = obj.storage
    elif isinstance(obj, dict):
        for v in obj.values():
            _storages(v, found)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _storages(v, found)
    return found


def _dtype(storage: _Storage) -> np.dtype:
    return np.dtype(STORAGE_DTYPES[storage.dtype])


def _read_zip(path: Path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise UserError(f"{path} is a zip file but not a torch.save checkpoint (no data.pkl)")
        root = pkl[: -len("data.pkl")]
        obj = _Unpickler(io.BytesIO(z.read(pkl)), path).load()
        data = {}
        for key, storage in _storages(obj, {}).items():
            raw = z.read(f"{root}data/{key}")
            data[key] = np.frombuffer(raw, _dtype(storage))
    return _resolve(obj, data)


def _read_legacy(path: Path):
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f, path).load()
            protocol = _Unpickler(f, path).load()
            _Unpickler(f, path).load()  # system info: byte order and type sizes
        except UserError:
            raise
        except Exception:  # noqa: BLE001 - any failure here means "not this format"
            raise UserError(f"{path} is not a PyTorch checkpoint (torch.save)") from None
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise UserError(f"{path} is not a PyTorch checkpoint (torch.save)")
        obj = _Unpickler(f, path).load()
        keys = _Unpickler(f, path).load()
        storages = _storages(obj, {})
        data = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = _dtype(storages[str(key)]) if str(key) in storages else np.dtype("u1")
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise UserError(f"{path} is truncated (storage {key} is incomplete)")
            data[str(key)] = np.frombuffer(raw, dtype)
    return _resolve(obj, data)


def load(path) -> dict:
    """The object a ``torch.save`` file holds, tensors as numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)
