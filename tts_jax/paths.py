"""Where a path becomes a path: the one path type of run files, and the place it is made.

Every path a command takes (``--workdir``, ``--out``, a teacher's workdir, a sweep's workdir)
is turned into a :class:`etils.epath.Path` once, where it enters (:func:`run_path`): a local
path is made absolute against the directory the command was typed in, and ``gs://`` stays as
it is (``s3://`` is refused: epath would take it, but no S3-compatible server tests it here).
Everything below the command line takes that path and never looks at the process's working
directory again, so orbax, tensorstore and TFDS never see a relative path (orbax reads no
checkpoint metadata from one).

Inputs that every host keeps its own copy of (a corpus, a mel folder, a wav to score) stay
local files: :func:`local_path` makes them absolute and refuses an object-store URL by name.

A config field holds a path when its name is ``path`` or ``mixtures`` or ends in ``_dir`` or
``_workdir`` (``data.path``, ``data.mel_dir``, ``data.mixtures``, ``model.teacher_workdir``);
:func:`resolve_config_paths`
resolves those as configs enter (``tts_jax.config.load_config``, ``tts_jax.workdir.read_config``).
"""

from __future__ import annotations

import io
import os

from etils import epath

from tts_jax.errors import UserError

OBJECT_STORES = ("gs://", "s3://")
Path = epath.Path  # the path type of run files (local or gs://)


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an object in a bucket (``gs://``, ``s3://``)."""
    return os.fspath(path).startswith(OBJECT_STORES)


def run_path(path: str | os.PathLike) -> epath.Path:
    """A run file's path as it enters: absolute when local (against the current directory,
    ``~`` expanded; symlinks kept as typed), an object-store URL as it is."""
    text = os.fspath(path)
    if not text:
        raise UserError("an empty path was given; expected a folder such as runs/NAME")
    if text.startswith("s3://"):
        raise UserError(
            f"{text}: s3:// workdirs are not supported (not tested against an S3 server); "
            "use a local path or gs://BUCKET/..."
        )
    if is_remote(text):
        scheme, _, rest = text.partition("://")
        if not rest.split("/", 1)[0]:
            raise UserError(f"{text} names no bucket; expected {scheme}://BUCKET/PATH")
        return epath.Path(text)
    if "://" in text:
        raise UserError(
            f"{text}: unknown storage scheme {text.split('://')[0]!r}; a run's path is local "
            "or gs://BUCKET/..."
        )
    return epath.Path(os.path.abspath(os.path.expanduser(text)))


def local_path(path: str | os.PathLike, what: str = "this input") -> epath.Path:
    """An absolute local path for an input each host keeps its own copy of (a corpus, mels,
    audio); an object-store URL is refused, naming ``what``."""
    if is_remote(path):
        raise UserError(
            f"{what} {os.fspath(path)} must be a local path: corpora, mel folders and audio "
            "inputs are read from each host's own disk (copy it there first)"
        )
    return run_path(path)


def is_path_field(name: str) -> bool:
    """Whether a config field of this name holds a path (the naming rule above)."""
    return name in ("path", "mixtures") or name.endswith(("_dir", "_workdir"))


def resolve_config_paths(config) -> None:
    """Makes every path field of a ConfigDict absolute in place (run paths for workdirs, local
    paths for data). Empty fields, unset placeholders and ``tfds:NAME`` datasets stay."""
    for key in list(config.keys()):
        value = config[key]
        if hasattr(value, "keys"):
            resolve_config_paths(value)
        elif is_path_field(key) and isinstance(value, str) and value:
            if value.startswith("tfds:"):
                continue
            if key.endswith("_workdir"):
                config[key] = os.fspath(run_path(value))
            else:
                config[key] = os.fspath(local_path(value, f"config field {key}"))


def write_whole(path: epath.Path, data: str | bytes) -> None:
    """Writes a whole file so that a reader sees the old content or the new, never a part:
    locally a temporary file renamed over it; in a bucket one upload, which the store makes
    visible at once (an object store cannot rename atomically, and needs not here)."""
    if is_remote(path):
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def write_bytes_via(path: epath.Path, write) -> None:
    """Runs ``write(file)`` (a writer that wants a file object: ``np.savez``, soundfile,
    matplotlib) into memory and writes the result whole to ``path``."""
    buffer = io.BytesIO()
    write(buffer)
    write_whole(path, buffer.getvalue())


def move_tree(src: epath.Path, dst: epath.Path) -> None:
    """Moves a folder (a damaged checkpoint set aside). Locally a rename; in a bucket, where
    a folder is a name prefix, every object is copied, then the originals deleted, so an
    interrupted move leaves a copy, never a loss."""
    if not is_remote(src):
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        return
    fs = _filesystem(src)
    fs.invalidate_cache()  # objects written by others (tensorstore, another host) are listed
    source, target = os.fspath(src), os.fspath(dst)
    names = [n for n in fs.find(source) if not n.endswith("/")]
    prefix = source.split("://", 1)[1]
    for name in names:
        fs.copy(name, target + name[len(prefix) :])
    fs.rm(names)
    fs.invalidate_cache()  # no listing may still show the moved folder


def _filesystem(path):
    """The fsspec filesystem of a bucket URL (gcsfs for gs://, s3fs for s3://): the very
    instance epath uses for it (one listing cache), reached for the operations epath does not
    have (create-only writes, moving a prefix)."""
    from etils.epath import backend

    scheme = os.fspath(path).split("://", 1)[0]
    try:
        return backend.fsspec_backend.fs(path)
    except ImportError as e:
        package = {"gs": "gcsfs", "s3": "s3fs"}[scheme]
        raise UserError(
            f"{os.fspath(path)}: {scheme}:// paths need the {package} package "
            f"(pip install 'tts-jax[gcs]' for gs://): {e}"
        ) from None


def create_exclusive(path: epath.Path, data: bytes) -> bool:
    """Writes ``path`` only if nothing is there; False when something is. Locally
    ``O_CREAT | O_EXCL``; in a bucket a create-only upload (GCS ``ifGenerationMatch=0``, S3
    ``If-None-Match: *``), which the store decides atomically between any number of writers."""
    if not is_remote(path):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True
    try:
        _filesystem(path).pipe_file(os.fspath(path), data, mode="create")
    except FileExistsError:
        return False
    return True


def check_bucket(path: epath.Path) -> None:
    """For a bucket URL: a UserError naming the bucket when it does not exist or cannot be
    reached with the credentials at hand (before any work starts); nothing for a local path."""
    if not is_remote(path):
        return
    text = os.fspath(path)
    scheme, rest = text.split("://", 1)
    bucket = f"{scheme}://{rest.split('/', 1)[0]}"
    try:
        found = _filesystem(path).exists(bucket)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - each client raises its own kinds (auth, network)
        raise UserError(
            f"bucket {bucket} of {text} cannot be reached ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}); check the credentials "
            "(gcloud auth application-default login) and the network"
        ) from None
    if not found:
        raise UserError(f"bucket {bucket} of {text} does not exist (create it first)")
