"""Command line: ``python bench.py …`` and the ``facesec`` script run this.

Exit codes: 0 ok, 1 the run failed, 2 bad input, 3 a certification
criterion failed or could not be resolved (UNRESOLVED) under ``run --strict``,
4 ``compare`` found a security regression, 5 ``compare`` proved nothing (no
gated metric compared, or a row in one run only without ``--allow-unmatched``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import benchmark
from benchmark.cli.cache import add_parser as add_cache_parser
from benchmark.cli.cache import cache_main
from benchmark.cli.compare import EXIT_REGRESSION, EXIT_UNMATCHED, compare_main
from benchmark.cli.compare import add_parser as add_compare_parser
from benchmark.cli.leaderboard import add_parser as add_leaderboard_parser
from benchmark.cli.leaderboard import leaderboard_main
from benchmark.core.cache import Cache, atomic_write_text
from benchmark.core.executors import EXECUTOR_NAMES, ExecutorUnavailable, make_executor
from benchmark.core.numbers import format_bytes, format_value
from benchmark.core.parallel import default_workers
from benchmark.core.registry import all_registries
from benchmark.engine.pipeline import RunOptions, RunOutput, run_protocol
from benchmark.engine.protocol import ProtocolError, load_protocol
from benchmark.engine.results import CertificationEntry, Results, ResultsError, read_results
from benchmark.metrics.certify import overall_verdict

__all__ = [
    "main",
    "build_parser",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_CERT_FAILED",
    "EXIT_REGRESSION",
    "EXIT_UNMATCHED",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CERT_FAILED = 0, 1, 2, 3

log = logging.getLogger("facesec")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own exit code is 2 too
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _default_out(protocol: Path) -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "facesec" / "runs" / protocol.stem


#: The top-level ``--help`` ends with these; each is a command of the README (``python bench.py`` is ``facesec``).
EXAMPLES = """\
examples:
  the quickstart on the embedded synthetic demo faces, ending in report.html:
    facesec run protocols/quickstart.yaml --out runs/quickstart
  check protocol files without running them:
    facesec validate protocols/
  a real dataset, set on the command line (a list item as recognizers[0]):
    facesec run protocols/orl-baseline.yaml --set dataset.root=../shared/data/orl --out runs/orl
  did a change weaken a protection? (two runs of one protocol):
    facesec compare base/ pr/ --markdown summary.md
  rank attacks and schemes over many runs:
    facesec leaderboard runs/ --out site/leaderboard

'facesec COMMAND --help' shows a command's options; 'python bench.py' is the same command line.
"""


def version() -> str:
    """This code's version: the package's ``__version__`` (the installed metadata takes it from there)."""
    return benchmark.__version__


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="facesec",
        description="FaceSec Bench: security evaluation of protected face data.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    p.add_argument("--version", action="version", version=f"facesec {version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", help="run a protocol", description="Run a protocol and write scores, results.json and report.html."
    )
    run.add_argument("protocol", type=Path, help="protocol YAML file")
    run.add_argument("--out", type=Path, help="output folder (default: $XDG_DATA_HOME/facesec/runs/<protocol>)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a protocol field, e.g. dataset.root=/data/lfw or 'recognizers[0].params.radius=3' (repeatable)",
    )
    run.add_argument(
        "--workers", type=int, default=None, help="worker processes for per-sample work (default: cores, at most 8)"
    )
    run.add_argument(
        "--executor",
        choices=EXECUTOR_NAMES,
        default=None,
        help="where per-sample work runs: a local process pool (default) or Dask (pip install -e '.[dask]')",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address or scheduler file (default with --executor dask: an in-process LocalCluster)",
    )
    run.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: $FACESEC_CACHE or $XDG_CACHE_HOME/facesec)"
    )
    run.add_argument("--no-cache", action="store_true", help="recompute everything and store nothing")
    run.add_argument("--no-report", action="store_true", help="write results.json but no report.html")
    run.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each report figure as PNG and PDF and each table as CSV and LaTeX to DIR (index.json lists them)",
    )
    run.add_argument(
        "--strict", action="store_true", help="exit with code 3 when a certification criterion fails or is UNRESOLVED"
    )

    rep = sub.add_parser(
        "report",
        help="render a report from results.json",
        description="Render report.html (and, with --export, its figures and tables) from a run's results.json.",
    )
    rep.add_argument(
        "results", type=Path, metavar="RESULTS_JSON_OR_DIR", help="results.json, or the run folder holding it"
    )
    rep.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="HTML file to write (default: report.html beside results.json)",
    )
    rep.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each figure as PNG and PDF and each table as CSV and LaTeX to DIR (index.json lists them)",
    )

    val = sub.add_parser(
        "validate", help="validate protocol files", description="Validate protocol files or every *.yaml in folders."
    )
    val.add_argument("paths", nargs="+", type=Path, help="files or folders")
    val.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field before validating",
    )

    sub.add_parser(
        "list",
        help="list registered components",
        description="List every registered component with its summary and parameters.",
    )
    sub.add_parser(
        "doctor",
        help="check the installation",
        description="Versions, OpenJPEG library, models found, GPU. Exit 1 when a required part is missing or "
        "broken; optional parts (the dlib extra, GPU) are reported but never fail the check.",
    )

    add_cache_parser(sub)

    perf = sub.add_parser("perf", help="run speed benchmarks", description="Run speed benchmarks and print a table.")
    perf.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    perf.add_argument("--json", type=Path, default=None, help="also write the records as JSON here")
    perf.add_argument(
        "--protocol", type=Path, default=None, help="e2e: the protocol to time (default: protocols/quickstart.yaml)"
    )
    perf.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="e2e: protocol overrides"
    )
    perf.add_argument("--workers", type=int, default=1, help="e2e: worker processes of the timed run (default 1)")

    prot = sub.add_parser(
        "protect",
        help="selectively encrypt image files (JPEG2000 / JPEG)",
        description="Encode images as JPEG2000 (lossless, layered, SOP/EPH) or JPEG and encrypt a window "
        "of each codestream; a folder is mirrored, with a JSON sidecar next to each output.",
    )
    prot.add_argument("input", type=Path, metavar="IN", help="image file or folder")
    prot.add_argument("output", type=Path, metavar="OUT", help="output file (.j2k / .jpg) or folder")
    prot.add_argument(
        "--scheme",
        required=True,
        help="lw<W>o<O>, rw<W>o<O> or pw<W>o<O> (JPEG 2000 in layer, resolution or RPCL progression) "
        "or jw<W>o<O> (JPEG) or ja<W>o<O>[-ac] (JPEG, amplitude bits only), e.g. lw4o6; W = window, "
        "O = offset in percent",
    )
    prot.add_argument(
        "--app-id", default="default", help="application id; a new one renews every key (default: default)"
    )
    prot.add_argument("--restart", action="store_true", help="J2K: RESTART mode (terminate every coding pass)")
    prot.add_argument("--quality", type=int, default=None, help="JPEG: quality 1-100 (default 90)")
    prot.add_argument(
        "--restart-interval", type=int, default=None, help="JPEG: restart interval in MCUs (default 0: none)"
    )
    prot.add_argument(
        "--mix-keys",
        action="store_true",
        help="protect into an OUT that holds files protected under another key (they are re-protected)",
    )
    unprot = sub.add_parser(
        "unprotect",
        help="restore protected files byte-exactly (as .j2k / .jpg codestreams; --png also decodes them)",
        description="Decrypt protected files (each with its JSON sidecar) back to the plaintext codestream: "
        "OUT holds the .j2k / .jpg files protect encoded, not the original image files. With --png each is "
        "also decoded and written as a PNG beside it (a/b.j2k -> a/b.png; lossless JPEG 2000 gives back the "
        "original pixels).",
    )
    unprot.add_argument("input", type=Path, metavar="IN", help="protected file or folder")
    unprot.add_argument("output", type=Path, metavar="OUT", help="output codestream file (.j2k / .jpg) or folder")
    unprot.add_argument(
        "--png", action="store_true", help="also write each restored codestream decoded as a PNG image beside it"
    )
    for sp in (prot, unprot):
        sp.add_argument("--key-file", type=Path, default=None, help="master key file (32 raw bytes or 64 hex digits)")
        sp.add_argument(
            "--key-env",
            default=None,
            metavar="NAME",
            help="environment variable holding the master key (64 hex digits)",
        )
        sp.add_argument("--workers", type=int, default=None, help="worker processes (default: cores, at most 8)")
    add_leaderboard_parser(sub)
    add_compare_parser(sub)
    return p


def _protocol_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(list(path.rglob("*.yaml")) + list(path.rglob("*.yml")))
        else:
            files.append(path)
    return files


def cmd_validate(args: argparse.Namespace) -> int:
    files = _protocol_files(args.paths)
    if not files:
        print("error: no protocol file found", file=sys.stderr)
        return EXIT_BAD_INPUT
    bad = 0
    for f in files:
        try:
            load_protocol(f, args.overrides)
        except ProtocolError as exc:
            print(exc, file=sys.stderr)
            bad += 1
        else:
            print(f"ok {f}")
    return EXIT_BAD_INPUT if bad else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers: {args.workers} is not >= 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.export is not None and args.no_report:
        print("error: --export needs the report: drop --no-report", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        lp = load_protocol(args.protocol, args.overrides)
    except ProtocolError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    out = (args.out or _default_out(args.protocol)).expanduser().resolve()
    cache = Cache(args.cache, enabled=not args.no_cache) if args.cache else Cache(enabled=not args.no_cache)
    execution = lp.model.execution
    name = args.executor or (execution.executor if args.scheduler is None else "dask")
    workers = args.workers or execution.workers or default_workers()
    try:
        executor = make_executor(name, workers=workers, scheduler=args.scheduler or execution.scheduler)
    except (ExecutorUnavailable, ValueError) as exc:
        print(f"error: --executor {name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    opts = RunOptions(out=out, cache=cache, workers=workers, executor=executor)
    t0 = time.perf_counter()
    try:
        result = run_protocol(lp, opts)
    except ProtocolError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        executor.close()
    export = args.export.expanduser().resolve() if args.export is not None else None
    report = None if args.no_report else _write_report(result.results, out / "report.html", export, cache)
    _print_summary(result, report, time.perf_counter() - t0, export)
    # An UNRESOLVED criterion is not a pass: the data could not show that it holds.
    criteria = result.results.get("certification", [])
    failed = [c for c in criteria if c["verdict"] != "PASS"]
    if failed and args.strict:
        print(f"--strict: exit code {EXIT_CERT_FAILED}: {len(failed)} of {len(criteria)} criteria did not PASS")
        for c in failed:
            print(f"  {_criterion(c)}: judged value {format_value(c['metric'], c['value'])}: {c['verdict']}")
        return EXIT_CERT_FAILED
    return EXIT_OK


def _write_report(results: Results, path: Path, export: Path | None, cache: Cache | None = None) -> Path:
    # Imported on use: commands that write no report need not load it.
    from reports.render import write_report

    return write_report(results, path, export_dir=export, cache=cache)


def _export_index(export: Path) -> Path:
    from reports.export import INDEX_NAME

    return export / INDEX_NAME


def _print_summary(result: RunOutput, report: Path | None, seconds: float, export: Path | None = None) -> None:
    for row in result.results["rows"]:
        m = row["metrics"]
        eer = m.get("eer")
        eer_s = "n/a" if eer is None else f"{100 * eer:.2f}%"
        print(f"{row['recognizer']:<16} {row['scheme']:<14} {row['attack']:<8} {row['view']:<20} EER {eer_s}")
    for c in result.results.get("certification", []):
        reason = f"; {c['reason']}" if c.get("reason") else ""
        # A FAIL's reason names its row already.
        decided = f"; decided by {c['worst_row']}" if c.get("decided_by") and c["verdict"] != "FAIL" else ""
        value = format_value(c["metric"], c["value"])
        print(f"certify {_criterion(c)}: {c['verdict']} (judged value {value}{decided}{reason})")
    s = result.engine.summary()
    print(f"results: {result.results_path}")
    if report is not None:
        print(f"report:  {report}")
    if export is not None:
        print(f"export:  {_export_index(export)}")
    print(f"done in {seconds:.1f} s (cache: {s['hits']} hits, {s['misses']} misses)")
    if result.engine.cache.enabled:
        print(_cache_line(result.engine.cache))
    print(verdict_line(result.results.get("certification")))


def _criterion(c: CertificationEntry) -> str:
    """A certification entry's criterion: ``eer [strength:*] <= 25%`` (bounds of rates as percentages)."""
    upper = "max" in c
    bound = c["max"] if "max" in c else c["min"]
    return f"{c['metric']} [{c['view']}] {'<=' if upper else '>='} {format_value(c['metric'], bound, 6)}"


def _cache_line(cache: Cache) -> str:
    """Where the stage cache is and what it holds (``facesec cache`` shows more and prunes)."""
    total = cache.usage()["total"]
    return (
        f"cache:   {cache.root} ({format_bytes(total.bytes)} in {total.entries:,} entries; 'facesec cache' prunes it)"
    )


def verdict_line(entries: Sequence[Mapping[str, Any]] | None) -> str:
    """The run's last line: the overall certification verdict and how many criteria gave each verdict."""
    if not entries:
        return "verdict: none (the protocol sets no certify: criteria)"
    verdicts = [str(c["verdict"]) for c in entries]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "FAIL", "UNRESOLVED") if v in verdicts)
    return f"verdict: {overall_verdict(verdicts)} ({counts} of {len(verdicts)} criteria; the report opens with them)"


def cmd_report(args: argparse.Namespace) -> int:
    path = args.results / "results.json" if args.results.is_dir() else args.results
    try:
        results = read_results(path)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = (args.out or path.with_name("report.html")).expanduser().resolve()
    export = args.export.expanduser().resolve() if args.export is not None else None
    _write_report(results, out, export)
    print(f"report:  {out}")
    if export is not None:
        print(f"export:  {_export_index(export)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    registries = list(all_registries().values())
    # One name column for every kind, as wide as the longest name: summaries line up.
    width = max((len(name) for registry in registries for name, _ in registry.items()), default=0)
    for registry in registries:
        print(f"{registry.plural}:")
        for name, cls in registry.items():
            print(f"  {name:<{width}}  {cls.summary()}")
            params = [(p, repr(d), cls._constraints.get(p)) for p, d in cls.param_defaults().items()]
            pw = max((len(p) for p, _, _ in params), default=0)
            dw = max((len(d) for _, d, _ in params), default=0)
            for pname, default, constraint in params:
                allowed = f"  allowed: {constraint.describe()}" if constraint else ""
                print(f"      {pname:<{pw}} = {default:<{dw}}{allowed}".rstrip())
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from benchmark.cli.doctor import doctor_lines, doctor_report

    lines, ok = doctor_lines(doctor_report())
    print("\n".join(lines))
    # Only required parts decide: a missing optional extra is no failed installation.
    return EXIT_OK if ok else EXIT_FAILED


def cmd_perf(args: argparse.Namespace) -> int:
    from benchmark.cli import perf  # imports torch and the learning attacks: only for this command

    e2e_options = args.protocol is not None or args.overrides or args.workers != 1
    if e2e_options and args.names != ["e2e"]:
        print(
            "error: --protocol, --set and --workers apply to the e2e benchmark alone: bench.py perf e2e …",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return EXIT_BAD_INPUT
    records: list[dict[str, Any]]
    try:
        if e2e_options:
            records = perf.end_to_end(
                protocol=args.protocol or perf.QUICKSTART, overrides=args.overrides, workers=args.workers
            )
        else:
            records = perf.run(args.names or None)
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProtocolError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    # One table per benchmark: their columns differ.
    print(
        "\n\n".join(
            perf.format_table([r for r in records if r["name"] == n]) for n in dict.fromkeys(r["name"] for r in records)
        )
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(records, indent=2), shared=True)
    return EXIT_OK


def cmd_protect(args: argparse.Namespace) -> int:
    # Imported on use, as the codecs and the cipher are: a run need not load them.
    from benchmark.cli.protect import protect_main

    return protect_main(args)


def cmd_unprotect(args: argparse.Namespace) -> int:
    from benchmark.cli.protect import unprotect_main

    return unprotect_main(args)


_COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "validate": cmd_validate,
    "list": cmd_list,
    "doctor": cmd_doctor,
    "cache": cache_main,
    "perf": cmd_perf,
    "protect": cmd_protect,
    "unprotect": cmd_unprotect,
    "leaderboard": leaderboard_main,
    "compare": compare_main,
}


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """A warning as one line of its message (Python's default adds the file, line and source that raised it)."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # Progress of long work (a training epoch: loss, validation loss, ETA) is
    # shown without -v: bars only draw on a terminal, and a log needs the lines.
    logging.getLogger("facesec.progress").setLevel(logging.INFO)
    try:
        with warnings.catch_warnings():  # restored on return: main() may run inside another program
            if not args.verbose:
                warnings.showwarning = _show_warning
            return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug or an environment failure: one line, exit 1
        if args.verbose:
            raise
        print(f"error: run failed: {type(exc).__name__}: {exc} (use -v for a traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
