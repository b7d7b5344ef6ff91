"""The process entry point of ``tts-jax`` (and ``python -m tts_jax``): the host allocator's
policy first (:mod:`tts_jax.host_memory`, which must precede every thread pool), then the
command line (:mod:`tts_jax.cli`)."""

import sys

from tts_jax.host_memory import retain_freed_memory


def main() -> int:
    retain_freed_memory()
    from tts_jax.cli import main as cli_main  # each verb imports what it needs

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
