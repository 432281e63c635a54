"""The `copilot` command line: index, retrieve, check, draft, prompts, serve-model, ui, eval, train."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.settings import OFFLINE_ENV, Settings, load_settings

# Heavy libraries are imported inside the commands, after this: nothing may reach a model hub or send telemetry.
for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _read_text_arg(value: str | None) -> str:
    if value is None or value == "-":
        if sys.stdin.isatty() and value is None:
            raise CopilotError("No text given.", fix="pass the text as an argument, or `-` to read it from stdin")
        data = sys.stdin.buffer.read()
        return data.decode("utf-8", errors="replace")
    return value


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{col}"


def _format_findings(text: str, findings: Sequence[Any]) -> str:
    if not findings:
        return "No problems found."
    rows = []
    for f in findings:
        rows.append(
            f'{_line_col(text, f.start)}  {f.severity:<5} {f.category:<14} "{f.text}"\n'
            f"      why: {f.message}\n      try: {f.suggestion}\n      guidance: {f.source}"
        )
    return "\n".join(rows)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.assembly import load_checker
    from copilot.checker import CheckContext, blocking

    checker = load_checker(settings)
    context = CheckContext(customer_name=args.name)
    if args.jsonl is not None:
        stream = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
        worst = EXIT_OK
        with stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    text = item["text"]
                    if not isinstance(text, str):
                        raise TypeError
                except (json.JSONDecodeError, KeyError, TypeError):
                    print(json.dumps({"line": number, "error": 'each line must be a JSON object like {"text": "..."}'}))
                    worst = EXIT_USAGE
                    continue
                findings = checker.check(text, CheckContext(customer_name=item.get("name") or args.name))
                if blocking(findings) and worst == EXIT_OK:
                    worst = EXIT_FLAGGED
                print(
                    json.dumps(
                        {"findings": [f.to_dict() for f in findings], "blocking": bool(blocking(findings))},
                        ensure_ascii=False,
                    )
                )
        return worst
    text = _read_text_arg(args.text)
    findings = checker.check(text, context)
    if args.json:
        _print_json({"findings": [f.to_dict() for f in findings], "blocking": bool(blocking(findings))})
    else:
        print(_format_findings(text, findings))
    return EXIT_FLAGGED if blocking(findings) else EXIT_OK


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.assembly import open_guidance, reindex

    embedder, store = open_guidance(settings)
    report = reindex(settings, embedder, store, progress=not args.json)
    if args.json:
        _print_json(report.to_dict())
    else:
        for problem in report.problems:
            print(f"skipped: {problem}", file=sys.stderr)
        print(report.summary())
    return EXIT_OK


def cmd_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.assembly import make_retriever, open_guidance, reindex

    embedder, store = open_guidance(settings)
    if store.count() == 0:
        print("The index is empty; building it first.", file=sys.stderr)
        reindex(settings, embedder, store)
    hits = make_retriever(settings, embedder, store).retrieve(args.query, args.k)
    if args.json:
        _print_json([h.to_dict() for h in hits])
    else:
        for number, hit in enumerate(hits, start=1):
            print(f"[{number}] {hit.citation}  ({hit.source}, score {hit.score:.3f})\n    {' '.join(hit.text.split())}")
    return EXIT_OK


def cmd_draft(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.assembly import assembled
    from copilot.pipeline import DraftRequest, StageEvent, TokenEvent, prepare_message

    message = _read_text_arg(args.message)
    prepare_message(message, settings.max_message_chars)  # refuse empty/binary input before starting a model
    request = DraftRequest(message=message, customer_name=args.name, channel=args.channel, tone=args.tone)
    with assembled(settings, progress=not args.json) as assembly:
        result = None
        for event in assembly.copilot.draft_events(request):
            if isinstance(event, StageEvent) and not args.json:
                print(f"\n[{event.stage}{': ' + event.detail if event.detail else ''}]", file=sys.stderr)
            elif isinstance(event, TokenEvent) and not args.json:
                print(event.text, end="", file=sys.stderr, flush=True)
            elif not isinstance(event, StageEvent | TokenEvent):
                result = event.result
    assert result is not None
    if args.json:
        _print_json(result.to_dict())
    else:
        print("\n\n=== Draft ===\n" + (result.draft or "(no draft)"))
        print("\n=== Findings ===\n" + _format_findings(result.draft, result.findings))
        print("\n=== Guidance used ===")
        for number, c in enumerate(result.citations, start=1):
            print(f"[{number}] {c.citation} ({c.source})")
        for notice in result.notices:
            print(f"note: {notice}")
        print("\ntimings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings.items()))
    if result.status == "model_unavailable":
        return EXIT_ERROR
    return EXIT_FLAGGED if result.status == "flagged" else EXIT_OK


def cmd_prompts(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.prompts import PromptLibrary, check_library

    if args.action == "check":
        problems = check_library(settings.prompts_dir)
        try:
            from copilot.assembly import load_checker

            checker = load_checker(settings)
            rule_failures = checker.self_test()
        except CopilotError as exc:
            problems.append(exc)  # type: ignore[arg-type]
            rule_failures = []
        for problem in problems:
            print(f"error: {problem}")
        for failure in rule_failures:
            print(f"rule example failed: {failure}")
        if problems or rule_failures:
            return EXIT_FLAGGED
        print(f"The prompt library in {settings.prompts_dir} is valid (prompts and checker rules with their examples).")
        return EXIT_OK
    library = PromptLibrary(settings.prompts_dir)
    if args.name not in library.prompts:
        raise CopilotError(f"No prompt called {args.name!r}.", fix=f"choose one of {', '.join(library.prompts)}")
    prompt = library.get(args.name)
    if not args.example:
        print(prompt.path.read_text(encoding="utf-8"))
        return EXIT_OK
    from copilot.examples import example_values

    system, user = prompt.render(example_values(library, args.name))
    print(f"--- system ({len(system)} chars) ---\n{system}\n\n--- user ({len(user)} chars) ---\n{user}")
    return EXIT_OK


def cmd_serve_model(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from copilot.assembly import start_local_server

    if args.port:
        settings = settings.model_copy(update={"local_model_port": args.port})
    server = start_local_server(settings)
    print(f"Serving {server.model_name} at {server.base_url} (OpenAI-compatible). Ctrl+C stops it.", flush=True)
    print(f"Use it from another process: OPENAI_BASE_URL={server.base_url} copilot draft ...", flush=True)
    try:
        while True:
            time.sleep(2)
            server.ensure_running()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.ui import serve

    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    return serve(settings.model_copy(update=updates))


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.evaluation import run_cli

    return run_cli(settings, suites=args.suite, report_dir=args.report, compare=args.compare, limit=args.limit)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from copilot.training import Options, cross_validate, load_items, rules_only, training_files, write_model

    options = Options(c=args.c, min_df=args.min_df, words=tuple(args.words), chars=tuple(args.chars))
    if args.cross_validate:
        items = load_items(training_files(settings.evals_dir))
        cross_validate(items, rules_only(settings.prompts_dir), options, args.thresholds, args.folds, args.score)
        return EXIT_OK
    out, data = write_model(settings.evals_dir, settings.prompts_dir, options)
    files, grams = len(data["trained_on"]), len(data["terms"])
    print(f"trained on {data['replies']} replies from {files} files; {grams} n-grams -> {out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and the README)."""
    parser = argparse.ArgumentParser(prog="copilot", description="Empathetic response copilot for service agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="index the knowledge folder (incremental)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("retrieve", help="show the guidance passages for a question")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("check", help="screen a reply for blame, defensiveness and empty apologies")
    p.add_argument("text", nargs="?", help="the reply, or - for stdin")
    p.add_argument("--name", help="the customer's name, for the coaching hint")
    p.add_argument("--json", action="store_true")
    p.add_argument("--jsonl", metavar="FILE", help='check many texts: one {"text": ...} per line (FILE or -)')
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("draft", help="draft a reply to a customer message")
    p.add_argument("message", nargs="?", help="the customer's message, or - for stdin")
    p.add_argument("--name", help="the customer's name")
    p.add_argument("--channel", choices=["email", "chat"], default="email")
    p.add_argument("--tone", choices=["neutral", "warmer", "more formal", "shorter"], default="neutral")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_draft)

    p = sub.add_parser("prompts", help="validate or preview the prompt library")
    psub = p.add_subparsers(dest="action", required=True)
    pc = psub.add_parser("check", help="validate every prompt and checker rule")
    pc.set_defaults(func=cmd_prompts)
    ps = psub.add_parser("show", help="show a prompt; --example renders it with a sample message")
    ps.add_argument("name")
    ps.add_argument("--example", action="store_true")
    ps.set_defaults(func=cmd_prompts)

    p = sub.add_parser("serve-model", help="run the embedded llama.cpp server alone")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve_model)

    p = sub.add_parser("ui", help="start the web app")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("eval", help="run the eval suites against their thresholds")
    p.add_argument("--suite", action="append", choices=["checker", "retrieval", "drafts"])
    p.add_argument("--report", type=Path, help="folder for the report (default: DATA_DIR/reports/<time>)")
    p.add_argument("--compare", metavar="REF", help="also run with prompts/ from this git ref and compare")
    p.add_argument("--limit", type=int, help="drafts suite: use only the first N messages")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="retrain the checker's learned rules from the labelled replies in evals/")
    p.add_argument("--cross-validate", action="store_true", help="score held-out folds instead; writes nothing")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--score", nargs="*", default=[], metavar="FILE", help="with --cross-validate: score only these")
    p.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
    p.add_argument("--c", type=float, default=4.0, help="inverse regularisation strength")
    p.add_argument("--min-df", type=int, default=2, help="ignore n-grams seen in fewer sentences")
    p.add_argument("--words", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX"), help="word n-grams")
    p.add_argument("--chars", type=int, nargs=2, default=(0, 0), metavar=("MIN", "MAX"), help="0 0 = none")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `copilot` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check" and args.text is None and args.jsonl is None and sys.stdin.isatty():
        parser.error("check needs TEXT, `-` for stdin, or --jsonl FILE")
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except CopilotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
