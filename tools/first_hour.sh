#!/usr/bin/env bash
# A new user's first hour, typed into a fresh shell on a fresh clone, recorded as markdown.
#
#   git clone REPO /tmp/fresh && cd /tmp/fresh && make .venv/.installed
#   bash tools/first_hour.sh > docs/FIRST_HOUR.md
#
# Its last section, every verb's --help, is regenerated alone by `make first-hour`
# (tools/cli_help.py); tests/test_docs.py fails when that section is stale.
#
# Every command below is run for real from the clone (or from a directory outside it, where
# the README says that works); its exit status and the first lines of its output are kept.
set -uo pipefail
CLONE=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$CLONE/.venv/bin:$PATH"
OUTSIDE=$(mktemp -d)
trap 'rm -rf "$OUTSIDE"' EXIT

run() {  # run [--lines N] [--in DIR] COMMAND...: one recorded command
  local lines=12 dir=$CLONE
  while [[ $1 == --* ]]; do
    case $1 in
      --lines) lines=$2; shift 2 ;;
      --in) dir=$2; shift 2 ;;
    esac
  done
  local shown=${dir/#$CLONE/CLONE}
  shown=${shown/#$OUTSIDE/ELSEWHERE}
  echo '```console'
  echo "$shown\$ $*" | sed -e "s|$OUTSIDE|ELSEWHERE|g" -e "s|$CLONE|CLONE|g"
  (cd "$dir" && eval "$@") > "$OUTSIDE/out" 2>&1
  local status=$?
  sed -e "s|$OUTSIDE|ELSEWHERE|g" -e "s|$CLONE|CLONE|g" "$OUTSIDE/out" | head -n "$lines"
  local total
  total=$(wc -l < "$OUTSIDE/out")
  if (( total > lines )); then echo "... ($((total - lines)) more lines)"; fi
  echo "[exit status $status]"
  echo '```'
  echo
}

cat <<EOF
# A researcher's first hour, recorded

Written by \`bash tools/first_hour.sh > docs/FIRST_HOUR.md\` on a clean checkout ($(git -C "$CLONE" rev-parse --short HEAD),
$(date -u +%Y-%m-%d)) in a fresh shell, after \`make .venv/.installed\`. CLONE is the clone,
ELSEWHERE an empty directory outside it. Outputs are cut to their first lines.

## What is there

EOF
run tts-jax --help
run --lines 40 tts-jax configs
run --lines 8 "tts-jax train --help | tail -n 30"

cat <<EOF
## Speech from the shipped model, from any directory

EOF
run --in "$OUTSIDE" tts-jax synthesize --text "'A new user types a sentence.'" --out hello.wav
run --in "$OUTSIDE" tts-jax synthesize --text "'Héllo → naïve café.'" --out accents.wav
run --in "$OUTSIDE" tts-jax synthesize --text "'Café ☕ time'" --out cup.wav
run --in "$OUTSIDE" tts-jax synthesize --text "'Café ☕ time'" --out cup.wav --config.data.text.unknown=drop
run --in "$OUTSIDE" tts-jax synthesize --text "'Hi.'" --out x.wav --config.bogus=1

cat <<EOF
## Overrides, right and wrong

EOF
TINY="experiments/frame_lm.py:tiny"
run tts-jax corpus --out "$OUTSIDE/corpus" --num-utterances 20 --workers 1
run tts-jax train --config $TINY --workdir "$OUTSIDE/w" --config.data.path="$OUTSIDE/corpus" --config.train.num_stepz=3
run tts-jax train --config $TINY --workdir "$OUTSIDE/w" --config.data.path="$OUTSIDE/corpus" --config.train.num_steps=abc
run tts-jax train --config $TINY --workdir "$OUTSIDE/w" --config.data.path="$OUTSIDE/corpus" --config.train.num_steps 3
run tts-jax train --config experiments/tacotron2.py:huge --workdir "$OUTSIDE/w"
run tts-jax vocode --mel x.npy --out x.wav --config.train.num_steps=3

cat <<EOF
## Training from outside the clone, logs to a file (a batch job)

EOF
run --in "$OUTSIDE" "tts-jax train --config experiments/frame_lm.py:tiny --workdir w --config.data.path=corpus --config.train.progress=True --config.train.log_every=4 2> train.log; cat train.log"
run --in "$OUTSIDE" --lines 4 "tts-jax train --config experiments/frame_lm.py:tiny --workdir w --config.data.path=corpus --config.train.compute_dtype=bfloat16 --config.train.num_steps=16 2>&1 | tail -n 4"

cat <<EOF
## A published checkpoint, imported (the committed fixture: random weights, reduced widths)

EOF
run tts-jax import hifigan --checkpoint tests/fixtures/jik876/g_v1 --config tests/fixtures/jik876/config_v1.json --out "$OUTSIDE/jik876_v1"
run tts-jax vocode --mel tests/fixtures/jik876/mel.npy --workdir "$OUTSIDE/jik876_v1" --out "$OUTSIDE/v1.wav"

cat <<EOF
## Every verb's --help

EOF
"$CLONE/.venv/bin/python" "$CLONE/tools/cli_help.py"
