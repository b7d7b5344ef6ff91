"""The command line describes itself from the registries: its top-level help imports no model
(nor JAX, TensorFlow or the text front end), each verb's help names the families that fill the
entry it needs, and one check (:meth:`tts_jax.family.Family.require`) refuses the others."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tts_jax import vocoders
from tts_jax.cli import VERBS, main
from tts_jax.errors import UserError
from tts_jax.family import ROLES, families_with, family_names, get_family

# Imported by a verb when it runs, never by `tts-jax --help`: seconds of start-up each.
HEAVY = ("jax", "flax", "tensorflow", "tensorflow_datasets", "inflect", "librosa", "numpy")


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse's line breaks folded


def test_top_level_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from tts_jax.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} + ('tts_jax.family', 'tts_jax.models') "
        "if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "[]"
    assert all(v.name in out.stdout for v in VERBS)


def test_top_level_help_names_no_family(capsys):
    """The verb list is written without the registry, so it must not name families by hand."""
    text = _help(["--help"], capsys)
    named = [n for n in family_names() if re.search(rf"\b{n}\b", text, re.IGNORECASE)]
    assert named == []


@pytest.mark.parametrize("verb", [v.name for v in VERBS])
def test_every_verb_builds_its_parser(verb, capsys):
    assert _help([verb, "--help"], capsys).startswith(f"usage: tts-jax {verb}")


@pytest.mark.parametrize(
    "argv, entry",
    [
        (["synthesize"], "synthesizer"),
        (["export"], "export"),
        (["gta"], "gta"),
        (["import"], "import_checkpoint"),
        (["transcribe"], "recognizer"),
        (["separate"], "separator"),
        (["evaluate"], "evaluate"),
        (["evaluate"], "recognizer"),
    ],
)
def test_a_verbs_help_names_the_families_with_its_entry(argv, entry, capsys):
    text = _help([*argv, "--help"], capsys)
    having = families_with(entry)
    assert having and all(name in text for name in having)


@pytest.mark.parametrize("argv", [["synthesize"], ["vocode"], ["evaluate"], ["listen", "page"]])
def test_a_verbs_help_names_every_vocoder(argv, capsys):
    text = _help([*argv, "--help"], capsys)
    assert all(kind in text for kind in vocoders.kinds())


@pytest.mark.parametrize("name", family_names())
def test_require_gives_an_entry_or_names_the_families_that_have_it(name):
    family = get_family(name)
    for entry in (*ROLES, "evaluate", "export", "gta", "import_checkpoint"):
        fn = getattr(family, entry)
        if fn is not None:
            assert family.require(entry, "test") is fn
            continue
        with pytest.raises(UserError) as e:
            family.require(entry, "tts-jax test")
        message = str(e.value)
        assert message.startswith("tts-jax test: ") and repr(name) in message and entry in message
        assert all(other in message for other in families_with(entry))


def test_import_of_a_family_without_an_importer_is_refused(tmp_path, capsys):
    code = main(["import", "frame_lm", "--checkpoint", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "'frame_lm' model has no import_checkpoint" in err
    assert all(name in err for name in families_with("import_checkpoint"))


@pytest.mark.parametrize(
    "argv",
    [
        ["configs", "--config.train.num_steps=3"],
        ["prepare", "--data", "corpus", "--config.data.n_mels=40"],  # no --config to change
    ],
)
def test_verbs_without_a_config_refuse_overrides(argv, capsys):
    assert main(argv) == 2
    assert f"{argv[0]} takes no --config.* overrides" in capsys.readouterr().err


def test_an_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["synthesise"])
    assert exit_.value.code == 2
    assert "invalid choice: 'synthesise'" in capsys.readouterr().err
