"""``tts-jax listen page|serve|results``: samples pages and listening tests
(:mod:`tts_jax.listen`)."""

from __future__ import annotations

from tts_jax import vocoders
from tts_jax.cli.common import LOCAL, listing, positive_int
from tts_jax.errors import UserError
from tts_jax.listen import design as listen_design
from tts_jax.listen import page as listen_page
from tts_jax.listen import results as listen_results
from tts_jax.listen import server as listen_server


def add_listen(li) -> None:
    verbs = li.add_subparsers(dest="listen_command", required=True)
    pg = verbs.add_parser("page", help="a static samples page of systems on the same sentences")
    pg.add_argument(
        "--workdir", type=LOCAL, help="a sweep's workdir: every run in WORKDIR/runs/ is a system"
    )
    pg.add_argument(
        "--system",
        action="append",
        default=[],
        help="NAME=PATH, repeatable: a workdir, an exported model or a folder of wavs",
    )
    pg.add_argument(
        "--out", required=True, type=LOCAL, help="the folder to write (index.html, audio, images)"
    )
    pg.add_argument(
        "--sentences",
        type=LOCAL,
        help="a text file, one sentence a line (reference: espeak speaking them)",
    )
    pg.add_argument("--split", help="a corpus split (reference: its recordings), e.g. test")
    pg.add_argument("--limit", type=positive_int, default=5, help="at most this many sentences")
    pg.add_argument(
        "--reference", type=LOCAL, help="a folder of reference wavs named by sentence id"
    )
    pg.add_argument(
        "--vocoder",
        default=None,
        help=f"for synthesizers: {listing(vocoders.kinds())} (default griffin-lim)",
    )
    pg.add_argument("--title", default="Samples", help="the page's title (default: Samples)")
    pg.set_defaults(out_kind="dir", func=cmd_listen_page)
    sv = verbs.add_parser("serve", help="serve a listening test defined by a TOML file")
    sv.add_argument(
        "--test", required=True, type=LOCAL, help="TEST.toml (tts_jax/listen/design.py)"
    )
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to the network)",
    )
    sv.add_argument("--port", type=positive_int, default=8000, help="default 8000")
    sv.set_defaults(func=cmd_listen_serve)
    rs = verbs.add_parser("results", help="a test's ratings as tables with intervals and a plot")
    rs.add_argument("--test", required=True, type=LOCAL, help="the TEST.toml that was served")
    rs.add_argument(
        "--out", type=LOCAL, help="folder for the tables (default: TEST_results beside TEST.toml)"
    )
    rs.set_defaults(out_kind="dir", func=cmd_listen_results)


def cmd_listen_page(args) -> int:
    systems = [listen_page.parse_system(s) for s in args.system]
    if args.workdir:
        systems = listen_page.sweep_systems(args.workdir) + systems
    if not systems:
        raise UserError("listen page needs --workdir SWEEP or at least one --system NAME=PATH")
    manifest = listen_page.build_page(
        systems,
        args.out,
        sentences_file=args.sentences,
        split=args.split,
        limit=args.limit,
        reference_dir=args.reference,
        vocoder=args.vocoder,
        title=args.title,
    )
    print(
        f"listen page: {len(manifest['sentences'])} sentences x {len(manifest['systems'])} "
        f"systems (reference: {manifest['reference_source']}) -> {args.out}/index.html"
    )
    return 0


def cmd_listen_serve(args) -> int:
    listen_server.serve(listen_design.load_test(args.test), args.host, args.port)
    return 0


def cmd_listen_results(args) -> int:
    spec = listen_design.load_test(args.test)
    out = args.out or spec.path.with_name(f"{spec.path.stem}_results")
    print(listen_results.write_results(spec, out))
    print(f"listen results: {out}/results.md (+ CSV tables, results.png)")
    return 0
