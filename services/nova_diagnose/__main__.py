"""nova-diagnose: ``python -m nova_diagnose [--json] [--bundle FILE]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .bundle import bundle_members, write_bundle
from .collect import collect
from .options import parse_options
from .redact import Redactor
from .render import render

EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_BUNDLE_FAILED = 0, 1, 3


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(argv)
    redactor = Redactor.from_dirs(opts.secret_dirs)
    report = collect(opts, redactor)
    text = redactor.redact(render(report))
    json_text = redactor.redact(report.model_dump_json(indent=2)) + "\n"
    sys.stdout.write(json_text if opts.json else text)
    sys.stdout.flush()
    if opts.bundle is not None:
        try:
            write_bundle(Path(opts.bundle), bundle_members(opts, redactor, text, json_text))
        except OSError as exc:
            print(f"nova-diagnose: cannot write {opts.bundle}: {exc.strerror}", file=sys.stderr)
            return EXIT_BUNDLE_FAILED
        print(f"nova-diagnose: bundle written to {opts.bundle} (mode 0600)", file=sys.stderr)
    return EXIT_HEALTHY if report.healthy else EXIT_PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
