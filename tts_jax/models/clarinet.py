"""ClariNet Gaussian IAF student and its distillation from the Gaussian WaveNet teacher
(Ping, Peng & Chen 2018, section 3.3, Algorithm 1).

The student maps white noise z ~ N(0, I) ``[B, T]`` to audio in one parallel pass through
``flows`` inverse autoregressive flows. Flow i is a WaveNet over its input z^(i-1) (causal,
filter size 3) whose output at t depends only on z_<t; it emits (mu_t, log sigma_t) and maps
z_t -> z_t * sigma_t + mu_t. The composition is again Gaussian given z: Algorithm 1
accumulates mu_q <- mu_q * sigma + mu and log sigma_q <- log sigma_q + log sigma (in
log-scale), so q(x_t | z_<t) = N(mu_q, sigma_q^2) is known in closed form per sample.

Causality: a flow reads its input shifted right by one sample (a zero first), so its output
at t sees z_0..z_{t-1} and the conditioning. (ksw0306/ClariNet instead drops sample 0 and
re-zeros it after every flow; the shift keeps all T samples and the same dependence.)

Distillation objectives (``model.objective``), per sample t >= 1, averaged; the teacher's
distribution p(x_t | x_<t) is its output at t - 1 on the student's own sample x:

* ``reverse``      KL(q || p), closed form (tts_jax.distributions.gaussian_kl);
* ``reverse_reg``  KL(q || p) + lambda (log sigma_p - log sigma_q)^2;
* ``forward_reg``  KL(p || q) + the same regulariser;
* ``reverse_mc``   Monte-Carlo KL(q || p) from ``mc_samples`` draws of q per sample, the
                   parallel-WaveNet estimator the closed form replaces;

each plus ``stft_weight`` x the STFT-magnitude frame loss against the recorded audio.

Which gradients flow: the teacher's parameters are constants (``stop_gradient``); the
student's sample x is differentiated *through* the teacher (p depends on x_<t), as in the paper
and ksw0306 (reparameterisation). The conditioner (mel upsampler) is copied from the teacher
at initialisation; with ``model.freeze_conditioner`` its gradient is stopped too.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from tts_jax import audio as audio_lib
from tts_jax import distributions as D
from tts_jax.data.inputs import audio_segment_example
from tts_jax.errors import UserError
from tts_jax.models import wavenet as W
from tts_jax.train.family import Family, count_params
from tts_jax.train.precision import cast_floating, compute_dtype
from tts_jax.vocoders import TrainedVocoder, workdir_config

OBJECTIVES = ("reverse", "reverse_reg", "forward_reg", "reverse_mc")


class IAFFlow(nn.Module):
    """One Gaussian IAF: z ``[B, T]``, conditioning ``[B, T, M]`` -> (mu, log_scale) ``[B, T]``
    with (mu_t, log_scale_t) a function of z_<t only."""

    layers: int = 10
    residual_channels: int = 128
    gate_channels: int = 128
    skip_channels: int = 128
    kernel_size: int = 3
    front_kernel: int = 32

    @nn.compact
    def __call__(self, z, cond):
        shifted = jnp.pad(z, ((0, 0), (1, 0)))[:, :-1]  # input t holds z_{t-1}
        h = nn.relu(W.CausalConv(self.residual_channels, self.front_kernel)(shifted[..., None]))
        skip = 0.0
        for i in range(self.layers):
            block = W.ResidualBlock(
                self.residual_channels,
                self.gate_channels,
                self.skip_channels,
                self.kernel_size,
                2**i,
            )
            h, s = block(h, cond)
            skip = skip + s
        out = W.Dense(self.skip_channels)(nn.relu(skip))
        # Zero-initialised last layer: every flow starts as the identity (mu 0, sigma 1).
        out = nn.Dense(2, kernel_init=nn.initializers.zeros)(nn.relu(out))
        return out[..., 0], out[..., 1]


class Student(nn.Module):
    """z ``[B, T]``, normalised mel ``[B, T / hop, M]`` -> (x, mu_q, log_scale_q) ``[B, T]``."""

    flows: int = 6
    layers: int = 10
    residual_channels: int = 128
    gate_channels: int = 128
    skip_channels: int = 128
    kernel_size: int = 3
    front_kernel: int = 32
    upsample_strides: tuple[int, ...] = (16, 16)

    def setup(self):
        self.upsampler = W.ConditionUpsampler(tuple(self.upsample_strides))
        self.iafs = [
            IAFFlow(
                self.layers,
                self.residual_channels,
                self.gate_channels,
                self.skip_channels,
                self.kernel_size,
                self.front_kernel,
            )
            for _ in range(self.flows)
        ]

    def __call__(self, z, mel):
        return self.transform(z, self.upsampler(mel))

    def upsample(self, mel):
        return self.upsampler(mel)

    def transform(self, z, cond):
        """Algorithm 1: returns x and the accumulated (mu_q, log_scale_q) of q(x_t | z_<t)."""
        mu_q, log_q = jnp.zeros_like(z), jnp.zeros_like(z)
        for flow in self.iafs:
            mu, log_s = flow(z, cond)
            z = z * jnp.exp(log_s) + mu
            mu_q = mu_q * jnp.exp(log_s) + mu
            log_q = log_q + log_s
        return z, mu_q, log_q

    def flow_maps(self, z, cond):
        """Every flow's (mu, log_scale) along the way (for tests of the composition)."""
        maps = []
        for flow in self.iafs:
            mu, log_s = flow(z, cond)
            maps.append((z, mu, log_s))
            z = z * jnp.exp(log_s) + mu
        return maps


def build_student(config, upsample_strides=None) -> Student:
    """The student of ``config``; its conditioner has the teacher's strides (it is a copy),
    read from the teacher's workdir unless given."""
    m = config.model
    if upsample_strides is None:
        upsample_strides = tuple(teacher_config(config).model.upsample_strides)
    return Student(
        flows=m.flows,
        layers=m.student_layers,
        residual_channels=m.student_channels,
        gate_channels=m.student_channels,
        skip_channels=m.student_channels,
        kernel_size=m.student_kernel_size,
        front_kernel=m.student_front_kernel,
        upsample_strides=upsample_strides,
    )


def stft_config(sample_rate: int) -> audio_lib.MelConfig:
    """The frame loss's STFT: FFT 2048, 50 ms Hann window, 12.5 ms shift (paper, at 24 kHz),
    the window and shift scaled to ``sample_rate``."""
    return audio_lib.MelConfig(
        sample_rate=sample_rate,
        n_fft=2048,
        hop_length=round(0.0125 * sample_rate),
        win_length=round(0.05 * sample_rate),
        fmax=None,
    )


def stft_loss(x, y, cfg: audio_lib.MelConfig):
    """Mean squared difference of STFT magnitudes ``|STFT(x)| - |STFT(y)|``."""
    return jnp.mean(
        jnp.square(
            audio_lib.magnitude(audio_lib.stft(x, cfg))
            - audio_lib.magnitude(audio_lib.stft(y, cfg))
        )
    )


def distillation_terms(config, mu_q, log_q, mu_p, log_p, rng):
    """Per-batch means of every objective's ingredients; mu/log ``[B, T']`` aligned per sample."""
    m = config.model
    fq, fp = m.student_log_scale_min, m.log_scale_min
    lq, lp = D.bound(log_q, fq), D.bound(log_p, fp)
    reverse = jnp.mean(D.gaussian_kl(mu_q, lq, mu_p, lp, min(fq, fp)))
    forward = jnp.mean(D.gaussian_kl(mu_p, lp, mu_q, lq, min(fq, fp)))
    reg = jnp.mean(D.log_scale_regularizer(lq, lp, min(fq, fp)))
    out = {"kl_reverse": reverse, "kl_forward": forward, "log_scale_reg": reg}
    if m.objective == "reverse_mc":
        out["kl_reverse_mc"] = jnp.mean(
            D.monte_carlo_kl(rng, mu_q, lq, mu_p, lp, m.mc_samples, min(fq, fp))
        )
    return out


def objective(config, terms) -> jax.Array:
    m = config.model
    lam = m.reg_weight
    if m.objective == "reverse":
        return terms["kl_reverse"]
    if m.objective == "reverse_reg":
        return terms["kl_reverse"] + lam * terms["log_scale_reg"]
    if m.objective == "forward_reg":
        return terms["kl_forward"] + lam * terms["log_scale_reg"]
    if m.objective == "reverse_mc":
        return terms["kl_reverse_mc"]
    raise UserError(f"model.objective must be one of {OBJECTIVES}, got {m.objective!r}")


def check_config(config) -> None:
    m = config.model
    if m.objective not in OBJECTIVES:
        raise UserError(f"model.objective must be one of {OBJECTIVES}, got {m.objective!r}")
    if m.objective == "reverse_mc" and m.mc_samples < 1:
        raise UserError(f"model.mc_samples must be >= 1, got {m.mc_samples}")


def teacher_config(config):
    """The config saved in ``model.teacher_workdir`` (a trained wavenet run)."""
    from tts_jax.cli import load_workdir_config

    if not config.model.teacher_workdir:
        raise UserError("model.teacher_workdir is empty: train a teacher (experiments/wavenet.py)")
    tconfig = load_workdir_config(config.model.teacher_workdir)
    if tconfig.model.family != "wavenet":
        raise UserError(
            f"model.teacher_workdir {config.model.teacher_workdir} holds "
            f"{tconfig.model.family!r}, not a wavenet teacher"
        )
    if tconfig.data.hop_length != config.data.hop_length:
        raise UserError("the teacher was trained with another data.hop_length")
    return tconfig


def teacher_params(config):
    from tts_jax.train.loop import restore_params

    teacher_config(config)  # checks it is a wavenet run
    return restore_params(config.model.teacher_workdir)


def init_state(config, rng, batch):
    from tts_jax.train.state import TrainState

    check_config(config)
    teacher = teacher_params(config)
    student = build_student(config)
    mel = W.normalize_mel(batch["mels"][:1], teacher_config(config))
    params = student.init(rng, jnp.zeros_like(batch["audio"][:1]), mel)["params"]
    params = dict(params, upsampler=teacher["upsampler"])  # the teacher's conditioner
    tx = _optimizer(config)
    return TrainState.create(params, tx, rng, model_state={"teacher": teacher})


def _optimizer(config):
    """Adam from config, skipping (and counting, in the ``nonfinite`` metric) any update whose
    gradients are not finite, so that an unstable objective shows up in the comparison as
    non-finite steps rather than ending the run."""
    import optax

    from tts_jax.train.optim import make_optimizer

    tx, _ = make_optimizer(config.optim)
    return optax.apply_if_finite(tx, max_consecutive_errors=1000)


def train_step(config):
    from tts_jax.train.optim import make_optimizer
    from tts_jax.train.state import make_train_step

    check_config(config)
    tconfig = teacher_config(config)
    student = build_student(config)
    teacher = W.build_model(tconfig)
    _, schedule = make_optimizer(config.optim)
    cfg_stft = stft_config(config.data.sample_rate)
    freeze = config.model.freeze_conditioner
    w_stft = config.model.stft_weight
    dtype = compute_dtype(config.train.compute_dtype)

    def loss_fn(params, model_state, batch, rng):
        # The frozen teacher runs in the compute dtype too (it is state, which mixed
        # precision does not cast).
        teacher_params = cast_floating(jax.lax.stop_gradient(model_state["teacher"]), dtype)
        if freeze:
            params = dict(params, upsampler=jax.lax.stop_gradient(params["upsampler"]))
        y = batch["audio"]
        mel = W.normalize_mel(batch["mels"], tconfig)
        z_rng, mc_rng = jax.random.split(rng)
        z = jax.random.normal(z_rng, y.shape).astype(y.dtype)  # the same draw in any dtype
        x, mu_q, log_q = student.apply({"params": params}, z, mel)
        mu_p, log_p = teacher.apply({"params": teacher_params}, x, mel)
        # q(x_t | z_<t) against the teacher's p(x_t | x_<t), its output at t - 1.
        # The KL and its terms in float32 (under mixed precision the networks alone run in
        # bfloat16: differences of log-scales lose too much in 8 mantissa bits).
        mu_q, log_q, mu_p, log_p = (a.astype(jnp.float32) for a in (mu_q, log_q, mu_p, log_p))
        terms = distillation_terms(
            config, mu_q[:, 1:], log_q[:, 1:], mu_p[:, :-1], log_p[:, :-1], mc_rng
        )
        loss = objective(config, terms)
        frame = stft_loss(x.astype(jnp.float32), y.astype(jnp.float32), cfg_stft)  # FFT: f32
        metrics = dict(terms, stft=frame, distill=loss)
        metrics["teacher_nll_of_student"] = jnp.mean(
            D.gaussian_nll(x[:, 1:], mu_p[:, :-1], log_p[:, :-1], config.model.log_scale_min)
        )
        metrics["log_scale_q"] = jnp.mean(log_q)
        metrics["log_scale_p"] = jnp.mean(log_p)
        total = loss + w_stft * frame
        metrics["nonfinite"] = 1.0 - jnp.isfinite(total).astype(jnp.float32)
        return total, (metrics, model_state)

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    tconfig = teacher_config(config)
    student = build_student(config)
    teacher = W.build_model(tconfig)
    cfg_stft = stft_config(config.data.sample_rate)

    def step(state, batch):
        y = batch["audio"]
        mel = W.normalize_mel(batch["mels"], tconfig)
        z = jax.random.normal(jax.random.PRNGKey(0), y.shape)  # fixed noise: comparable evals
        x, mu_q, log_q = student.apply({"params": state.params}, z, mel)
        mu_p, log_p = teacher.apply({"params": state.model_state["teacher"]}, x, mel)
        kl = D.gaussian_kl(
            mu_q[:, 1:], log_q[:, 1:], mu_p[:, :-1], log_p[:, :-1], config.model.log_scale_min
        )
        nll = D.gaussian_nll(x[:, 1:], mu_p[:, :-1], log_p[:, :-1], config.model.log_scale_min)
        stft_d = jax.vmap(lambda a, b: stft_loss(a[None], b[None], cfg_stft))(x, y)
        valid = batch["valid"].astype(jnp.float32)
        n = jnp.maximum(jnp.sum(valid), 1.0)
        return {
            "kl_reverse": jnp.sum(jnp.mean(kl, axis=1) * valid) / n,
            "teacher_nll_of_student": jnp.sum(jnp.mean(nll, axis=1) * valid) / n,
            "stft": jnp.sum(stft_d * valid) / n,
            "weight": jnp.sum(valid),
        }

    return step


def param_count(config) -> dict[str, int]:
    """The student's flows. Its mel upsampler is the teacher's, counted with the teacher and
    left out here, so one stride stands in for the teacher's (no teacher workdir needed)."""
    batch = audio_segment_example(config)
    audio, mel = jnp.asarray(batch["audio"]), jnp.asarray(batch["mels"])
    student = build_student(config, upsample_strides=(config.data.hop_length,))
    init = lambda: student.init(jax.random.key(0), audio, mel)  # noqa: E731
    return {"student": count_params(init, leave_out=("upsampler",))}


FAMILY = Family(
    name="clarinet",
    make_data=W.make_data,  # the teacher's audio segments
    init_state=init_state,
    train_step=train_step,
    eval_step=eval_step,
    param_count=param_count,
)


class Vocoder(TrainedVocoder):
    """A distilled student as ``mel [F, n_mels] -> waveform [F * hop]``: one parallel pass.
    (Restoring it reads the teacher's workdir too: the train state holds the teacher.)"""

    def __init__(self, workdir, config=None, seed: int = 0):
        from tts_jax.data.inputs import mel_config
        from tts_jax.train.loop import restore_trained

        config = workdir_config(workdir, config, "clarinet")
        state = restore_trained(workdir, config, FAMILY, audio_segment_example(config))
        self.config, self.step, self.mel = config, int(state.step), mel_config(config)
        self.hop = config.data.hop_length
        student = build_student(config)
        params = jax.device_get(state.params)
        tconfig = teacher_config(config)

        @jax.jit
        def run(mel, rng):
            z = jax.random.normal(rng, (mel.shape[0], mel.shape[1] * self.hop))
            return student.apply({"params": params}, z, W.normalize_mel(mel, tconfig))[0]

        self._seed(seed)
        self._generate = lambda mel: run(mel, self._next_key())
