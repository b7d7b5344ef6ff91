"""Pictures for summaries and synthesis outputs (matplotlib, Agg): HxWx3 uint8 arrays."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tts_jax.paths import run_path, write_bytes_via  # noqa: E402


def _to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def mel_image(mels: dict[str, np.ndarray]) -> np.ndarray:
    """Stacked panels of log-mels ``[T, n_mels]`` (time on x), one per dict entry."""
    fig, axes = plt.subplots(len(mels), 1, figsize=(8, 2.2 * len(mels)), squeeze=False)
    for ax, (title, mel) in zip(axes[:, 0], mels.items(), strict=True):
        im = ax.imshow(np.asarray(mel).T, origin="lower", aspect="auto", interpolation="none")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("mel")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return _to_array(fig)


def alignment_image(alignment: np.ndarray, title: str = "") -> np.ndarray:
    """Attention weights ``[decoder steps, encoder steps]`` as an image."""
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(np.asarray(alignment).T, origin="lower", aspect="auto", interpolation="none")
    ax.set_xlabel("decoder step")
    ax.set_ylabel("encoder step")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _to_array(fig)


def save_figure(fig, path, dpi: int = 100) -> None:
    """A figure as a PNG at ``path`` (local or in a bucket)."""
    write_bytes_via(run_path(path), lambda f: fig.savefig(f, format="png", dpi=dpi))


def save_png(path, image: np.ndarray) -> None:
    plt.imsave(str(path), image)
