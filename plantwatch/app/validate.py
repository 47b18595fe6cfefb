"""`plantwatch validate`: device maps and plant configs checked; one line per problem."""

from __future__ import annotations

import argparse
from pathlib import Path

from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.config.validate import validate_paths


def command(args: argparse.Namespace) -> int:
    """Validate maps and plant configs; one line per problem."""
    files, problems = validate_paths([Path(p) for p in args.paths])
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(files)} file(s)")
        return EXIT_INVALID
    print(f"{len(files)} file(s) valid")
    return EXIT_OK
