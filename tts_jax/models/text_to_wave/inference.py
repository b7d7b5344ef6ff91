"""A trained text-to-wave model: text -> Tacotron 2 decoder states -> bridge-net -> cached
autoregressive WaveNet sampling (the wavenet family's :func:`generate`), batched and jitted."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from tts_jax import workdir
from tts_jax.eval import attention
from tts_jax.family import EvalRequest, Evaluation
from tts_jax.inference import frame_bucket
from tts_jax.models import tacotron2 as T2
from tts_jax.models import wavenet as W
from tts_jax.models.text_to_wave.model import TextToWave, build_model, part_config


class Synthesizer:
    """Batched text -> waveform with trained variables.

    ``__call__(texts)`` gives per text ``{"audio" [samples], "mel" [frames, M], "alignment"
    [steps, symbols], "stopped"}``: the synthesizer role's entries (tts_jax/family.py) plus the
    waveform. Texts are padded as Tacotron 2's :class:`~tts_jax.models.tacotron2.Synthesizer`
    pads them (and checked by it); the WaveNet samples each batch up to its longest utterance,
    rounded up to :func:`~tts_jax.inference.frame_bucket` frames (one compilation per bucket).
    """

    def __init__(self, config, variables, step: int):
        self.config = config
        self.step = int(step)
        self.model = build_model(config)
        self.variables = variables
        # Tacotron 2's synthesizer on its part: the text front end and its checks.
        self._text = T2.Synthesizer(
            part_config(config, "tacotron2"),
            {"params": variables["params"]["tacotron2"]},
            step,
        )
        self.max_steps = self._text.max_steps
        self.shapes: set[tuple[int, int]] = set()
        self.hop = config.data.hop_length
        floor = W.WaveNetConfig.from_config(config.model.wavenet).log_scale_min
        model = self.model
        self._decode = jax.jit(
            functools.partial(
                model.apply, method=TextToWave.synthesis_frames, max_decoder_steps=self.max_steps
            )
        )

        @jax.jit
        def sample(variables, frames, lengths, rng):
            cond = model.apply(variables, frames, lengths, method=TextToWave.conditioning)
            params = variables["params"]["wavenet"]
            return W.generate(model.wavenet, params, cond, rng, log_scale_min=floor)

        self._sample = sample

    @property
    def text(self):
        return self._text.text

    @text.setter
    def text(self, value):  # `synthesize --config.data.text.unknown=drop` sets it
        self._text.text = value

    @classmethod
    def from_workdir(cls, path, step: int | None = None) -> Synthesizer:
        """A training workdir's newest checkpoint (or ``step``)."""
        return cls(*workdir.load_variables(path, "text_to_wave", step))

    def __call__(self, texts: list[str], batch_size: int = 16, seed: int = 0) -> list[dict]:
        encoded = [self._text.encode(t) for t in texts]
        r = self.model.tacotron2.cfg.reduction
        halo = self.model.bridge.halo_frames()
        results = []
        for start, chunk, ids, lengths in T2.text_batches(encoded, batch_size):
            self.shapes.add(ids.shape)
            decode_rng, sample_rng = jax.random.split(jax.random.PRNGKey(seed + start))
            out = jax.device_get(
                self._decode(self.variables, ids, lengths, rngs={"dropout": decode_rng})
            )
            frames = out["lengths"][: len(chunk)]
            # Frames past the longest utterance are zero; the halo keeps its last samples exact.
            bucket = min(frame_bucket(int(frames.max()) + halo), out["frames"].shape[1])
            wav = jax.device_get(
                self._sample(
                    self.variables, out["frames"][: len(chunk), :bucket], frames, sample_rng
                )
            )
            for j, x in enumerate(chunk):
                f = int(frames[j])
                results.append(
                    {
                        "audio": np.asarray(wav[j, : f * self.hop], np.float32),
                        "mel": np.asarray(out["mel_after"][j, :f]),
                        "alignment": np.asarray(out["alignments"][j, : -(-f // r), : len(x)]),
                        "stopped": not bool(out["reached_max"][j]),
                    }
                )
        return results


def evaluate(path, request: EvalRequest) -> Evaluation:
    """``tts-jax evaluate --workdir``: held-out text synthesised to a waveform by the WaveNet
    itself (or, with ``--vocoder``, by a vocoder from the Tacotron 2 part's mel) and scored
    against espeak, with the free-running alignment's diagnostics (focus, the share of clips
    ended by the stop token) and the duration ratio as the family's own statistics."""
    synth = Synthesizer.from_workdir(path, request.step)
    pairs, diagnostics, _, texts = T2.heldout_synthesis(
        path,
        request.split,
        request.limit,
        request.vocoder,
        request.sentences,
        synthesizer=synth,
        own_waveform=request.own_waveform,
    )
    held_out = "given sentences" if request.sentences else f"{request.split} split"
    stats = attention.diagnostics_summary(diagnostics)
    stats["duration_ratio"] = stats["seconds"] / stats["reference_seconds"]
    waveform = "own WaveNet waveform" if request.own_waveform else request.vocoder_name
    return Evaluation(
        title=f"{Path(str(path)).name} (step {synth.step}) + {waveform}, {held_out}",
        step=synth.step,
        pairs=pairs,
        stats={"attention": stats},
        texts=texts,
    )
