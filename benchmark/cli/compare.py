"""``facesec compare BASE NEW``: a security regression check between two runs.

BASE and NEW are each a ``results.json`` file or a run folder holding one
(with its ``scores/`` and ``quality/`` folders). Rows are matched on
recognizer, scheme, attack and view; each security metric's change NEW - BASE
gets a 95 % bootstrap interval over probe subjects (paired when both runs
scored the same comparisons of the same samples) and a verdict against its
tolerance (:mod:`benchmark.engine.compare`). A Markdown summary goes to
stdout.

Exit codes: 0 no regression, 1 the comparison failed, 2 bad input (a
missing or invalid file or option, a score file that does not reproduce its
row, runs of other samples or of a protocol that measures differently: one
line naming it), 4 a regression was found: a security metric, or a
performance / image-quality metric when ``--performance`` / ``--quality``
lets it gate (3 is ``run --strict``'s), 5 nothing proven: no gated metric was
compared, or a row is in one run only (``--allow-unmatched`` accepts that).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from benchmark.engine.compare import (
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    DEFAULT_TOLERANCES,
    CompareError,
    CompareSettings,
    compare_runs,
    load_run,
    parse_scheme_map,
    parse_tolerances,
    render_markdown,
    write_comparison,
)

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_REGRESSION",
    "EXIT_UNMATCHED",
    "add_parser",
    "compare_main",
]

# The first three are benchmark.cli.main's codes, repeated here because main imports this module.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: A regression was found: a security metric, or a metric that --performance / --quality lets gate
#: (3 is ``run --strict``'s failed certification).
EXIT_REGRESSION = 4
#: Nothing proven: no gated metric was compared, or a row is in one run only (without --allow-unmatched).
EXIT_UNMATCHED = 5

_DESCRIPTION = """\
Compare two runs of a protocol row by row (recognizer, scheme, attack, view):
each security metric's change NEW - BASE with a 95 % subject-bootstrap CI
(paired when both runs scored the same comparisons of the same samples),
judged against a tolerance. Prints a Markdown summary."""

_EPILOG = """\
exit codes:
  0  no regression, and at least one gated metric was compared
  1  failure
  2  bad input: a missing or invalid file or option; a score or quality file
     that does not reproduce its row in results.json (or is missing while the
     run has others); runs of other samples (dataset fingerprint) or of a
     protocol that measures differently (dataset, recognizers, attacks,
     attacker, metrics, views or bootstrap section; schemes and keys may
     differ), unless --allow-different-data / --allow-different-protocol
  4  a regression was found (security; performance / image quality too with
     --performance / --quality)
  5  nothing proven: no gated metric was compared, or a row is in one run only
     (a scheme whose label changed needs --map-scheme; --allow-unmatched
     accepts one-sided rows), or a row's learned attack stopped on its
     budget in NEW, not converged (--allow-not-converged accepts it)
A run without any score files is judged on its stored values with the normal
approximation from its stored CIs, and the summary says so.

{tolerances}
A metric regresses when it moves the worse way by more than its tolerance and
its 95 % CI excludes the tolerance. Worse means: strength views eer and
fnmr_at_fmr_<t> down, sar_at_fmr_<t> up; linkage views d_sys and
linkability_max up, eer down; renewal sar_at_fmr_<t> up, eer down.
Performance (baseline/preservation eer, delta_eer up) gates only with
--performance, attack-output PSNR/SSIM (up) only with --quality; both are
reported regardless.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to an argparse subparsers object (its parser class is kept).

    Args:
        sub: The object ``ArgumentParser.add_subparsers`` returned.

    Returns:
        The subcommand's parser.
    """
    tolerances = textwrap.fill(
        "Default tolerances (absolute, in the metric's unit): "
        + ", ".join(f"{k}={v:g}" for k, v in DEFAULT_TOLERANCES.items())
        + ".",
        width=78,
    )
    p: argparse.ArgumentParser = sub.add_parser(
        "compare",
        help="check two runs for a security regression",
        description=_DESCRIPTION,
        epilog=_EPILOG.format(tolerances=tolerances),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", type=Path, metavar="BASE", help="reference run: results.json or its folder")
    p.add_argument("new", type=Path, metavar="NEW", help="run under test: results.json or its folder")
    p.add_argument(
        "--tol",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="tolerance of a metric family (eer, fnmr_at_fmr, sar_at_fmr, d_sys, linkability_max, delta_eer, "
        "psnr, ssim) or key (sar_at_fmr_0.0001), absolute (repeatable)",
    )
    p.add_argument("--performance", action="store_true", help="let recognition performance gate too")
    p.add_argument("--quality", action="store_true", help="let the PSNR/SSIM of attack output gate too")
    p.add_argument(
        "--map-scheme",
        action="append",
        default=[],
        metavar="BASE=NEW",
        help="compare scheme label BASE of the base run with label NEW of the new run, e.g. lw8o0=lw3o0 "
        "(a scheme whose parameters, hence label, changed; repeatable)",
    )
    p.add_argument(
        "--allow-unmatched",
        action="store_true",
        help="accept rows present in one run only (otherwise exit 5)",
    )
    p.add_argument(
        "--allow-not-converged",
        action="store_true",
        help="accept rows whose learned attack stopped on its budget in the new run (otherwise exit 5: an "
        "under-trained attack looks weaker, so an OK would prove nothing)",
    )
    p.add_argument(
        "--allow-different-data",
        action="store_true",
        help="compare runs of other samples (other dataset fingerprint; unpaired intervals) instead of refusing",
    )
    p.add_argument(
        "--allow-different-protocol",
        action="store_true",
        help="compare runs whose protocols measure differently (other dataset / recognizers / attacks / metrics / "
        "views / bootstrap settings) instead of refusing",
    )
    p.add_argument(
        "--n-boot",
        type=int,
        default=DEFAULT_N_BOOT,
        metavar="N",
        help=f"bootstrap resamples per row (default {DEFAULT_N_BOOT}; 0: normal approximation from stored CIs)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the resampling (default {DEFAULT_SEED})")
    p.add_argument("--markdown", type=Path, default=None, metavar="FILE", help="also write the summary here")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the full comparison as JSON")
    return p


def compare_main(args: argparse.Namespace) -> int:
    """Run ``facesec compare`` on parsed arguments; returns the exit code."""
    try:
        if args.n_boot < 0:
            raise CompareError(f"--n-boot: {args.n_boot} is not >= 0")
        if args.seed < 0:
            raise CompareError(f"--seed: {args.seed} is not >= 0")
        settings = CompareSettings(
            n_boot=args.n_boot,
            seed=args.seed,
            tolerances=parse_tolerances(args.tol),
            performance=args.performance,
            quality=args.quality,
            scheme_map=parse_scheme_map(args.map_scheme),
            allow_unmatched=args.allow_unmatched,
            allow_not_converged=args.allow_not_converged,
            allow_different_data=args.allow_different_data,
            allow_different_protocol=args.allow_different_protocol,
        )
        base, new = load_run(args.base), load_run(args.new)
        comparison = compare_runs(base, new, settings)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render_markdown(comparison))
    try:
        write_comparison(comparison, args.markdown, args.json)
    except OSError as exc:
        print(f"error: cannot write the comparison: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return {"regression": EXIT_REGRESSION, "unmatched": EXIT_UNMATCHED, "ok": EXIT_OK}[comparison.status]
