"""The ``scorer`` command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from scorer import plugins
from scorer.errors import ConfigError, ScorerError

# The core's other commands, each added by its module's register(subparsers). A command's
# module is imported only when that command runs (or for the whole tree: --help, a typo):
# `scorer run` and `scorer models ...` are started as subprocesses by operators' scripts and
# by the tests, and the bench's and the rule compiler's imports are ~0.3 s of CPU each time.
CORE_COMMANDS = {
    "bench": "scorer.bench.cli",
    "capacity": "scorer.capacity.cli",
    "models": "scorer.lifecycle.cli",
    "rules": "scorer.rules.cli",
}
OWN_COMMANDS = ("run", "demo")


def _command_name(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first positional; --log-level takes a value), or None."""
    args = iter(argv)
    for arg in args:
        if arg == "--log-level":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser: the whole tree, or with ``argv`` only what its command needs
    (the whole tree again when that is not a command: its error lists them all)."""
    name = None if argv is None else _command_name(argv)
    p, sub = _base_parser()
    if name in OWN_COMMANDS:
        return p
    if name in CORE_COMMANDS:
        importlib.import_module(CORE_COMMANDS[name]).register(sub)
        return p
    # Other concerns add their own commands: each exposes register(subparsers) and sets
    # ``func`` on its parsers. Packages beside the core (replay: replay/record/eval) declare
    # theirs as ``scorer.commands`` entry points.
    if name is not None:
        plugins.add_commands(sub)
        if name in sub.choices:
            return p
        p, sub = _base_parser()
    for module in CORE_COMMANDS.values():
        importlib.import_module(module).register(sub)
    plugins.add_commands(sub)
    return p


def _base_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The parser with the commands of this module (run, demo)."""
    p = argparse.ArgumentParser(prog="scorer", description="Real-time security event scoring")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the service: Kafka in, alerts out (config: SCORER_* env, --config YAML)")
    run.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
    run.add_argument("--processes", type=int, default=1, metavar="N",
                     help="scoring processes (consumer-group members, one core each) under one supervisor "
                          "that serves one /metrics and restarts a worker that exits; default 1: no supervisor")

    demo = sub.add_parser("demo", help="embedded default: bundled capture, scored in process (compiled trees "
                                       "where tl2cgen and a C compiler are installed, else ONNX Runtime)")
    demo.add_argument("--capture", type=Path, help="canonical JSON-lines capture (default: bundled)")
    demo.add_argument("--out", type=Path, default=Path("out/demo-alerts.jsonl"),
                      help="alerts file to write (default: %(default)s)")
    demo.add_argument("--batch", type=int, default=512, help="micro-batch size (default: %(default)s)")
    demo.add_argument("--model-repository", type=Path, default=None,
                      help="models to load (default: the repository's model_repository)")
    return p, sub


def main(argv: list[str] | None = None) -> int:
    args = _parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command != "run" and logging.getLogger().level > logging.DEBUG:
        # aiokafka logs every failed connection as an ERROR; a command reports its outcome
        # itself, in one line (the service keeps them: an operator follows its reconnects).
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            return _demo(args)
        func = getattr(args, "func", None)
        if func is not None:
            code: int = func(args)
            return code
    except ScorerError as exc:
        print(f"scorer: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Imported here: aiokafka is the commands' own import, not the parser's.
        from scorer.kafka.clients import CONNECTION_ERRORS, connection_failure

        if not isinstance(exc, CONNECTION_ERRORS):
            raise
        print(f"scorer: cannot talk to Kafka: {connection_failure(exc)}", file=sys.stderr)
        return 1
    return 1


def _run(args: argparse.Namespace) -> int:
    from scorer.config import load_settings
    from scorer.service.run import run_service

    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level.upper())
    if args.processes < 1:
        raise ConfigError(f"--processes must be 1 or more, not {args.processes}")
    if args.processes > 1:
        from scorer.service.supervisor import child_arguments, supervise

        return asyncio.run(supervise(settings, args.processes, child_arguments(args.log_level, args.config)))
    asyncio.run(run_service(settings))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from scorer.config import Settings
    from scorer.demo import bundled_capture, format_report, run_demo
    from scorer.service.build import build_scorer

    overrides: dict[str, object] = {"backend": "onnxruntime"}
    if args.model_repository is not None:
        overrides["model_repository"] = args.model_repository
    settings = Settings(inference=Settings().inference.model_copy(update=overrides))
    scorer = build_scorer(settings)

    async def go() -> str:
        await scorer.backend.start()
        try:
            report = await run_demo(scorer, args.capture or bundled_capture(), args.out, args.batch)
        finally:
            await scorer.backend.close()
        return format_report(report)

    print(asyncio.run(go()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
