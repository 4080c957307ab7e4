"""nova-model-fetch: put a GGUF model in place, verified by sha256.

Prints one JSON line on stdout; on failure one line on stderr and exit code 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ValidationError

from .errors import FetchError
from .progress import redact


def configure_environment() -> None:
    """Environment for huggingface_hub: must run before it is imported."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # sparse progress lines of our own
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _mode(value: str) -> int:
    try:
        return int(value, 8)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an octal mode: {value!r}") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nova-model-fetch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="is DEST present with this sha256? (uses a stamp file)")
    p.add_argument("--dest", required=True)
    p.add_argument("--sha256", required=True)

    p = sub.add_parser("install-file", help="verify a staged file and move it into place")
    p.add_argument("--source", required=True, help="the staged file")
    p.add_argument("--dest", required=True)
    p.add_argument("--sha256", required=True)
    p.add_argument("--keep-source", action="store_true", help="copy; keep the source even if bad")
    p.add_argument("--mode", type=_mode, default=0o644, help="file mode of DEST (octal)")
    p.add_argument("--reserve-bytes", type=int, help="free space to leave when copying")

    p = sub.add_parser("hf", help="download from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN)")
    p.add_argument("--repo", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--revision", required=True)
    p.add_argument("--sha256", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--cache-dir", help="partial downloads (default: DEST_DIR/.download-cache)")
    p.add_argument("--retries", type=int, help="retries after a failed attempt (default 3)")
    p.add_argument("--retry-wait", type=float, help="first wait between retries, seconds")
    p.add_argument("--reserve-bytes", type=int, help="free space to leave (default 256 MiB)")
    p.add_argument("--mode", type=_mode, default=0o644, help="file mode of DEST (octal)")
    return parser


def _options(model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    values = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    return model.model_validate(values)


def _run(args: argparse.Namespace) -> BaseModel:
    from . import commands, models

    table: dict[str, tuple[type[BaseModel], Callable[..., BaseModel]]] = {
        "check": (models.CheckOptions, commands.check),
        "install-file": (models.InstallFileOptions, commands.install_file),
        "hf": (models.HubOptions, commands.fetch_from_hub),
    }
    model, action = table[args.command]
    return action(_options(model, args))


def _fail(message: str, code: int) -> int:
    print(f"nova-model-fetch: error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    configure_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = _run(args)
    except ValidationError as e:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}"
            for err in e.errors()
        )
        parser.print_usage(sys.stderr)
        return _fail(problems, 2)
    except FetchError as e:
        return _fail(redact(" ".join(str(e).split())), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as e:
        return _fail(redact(f"{type(e).__name__}: {' '.join(str(e).split())}"), 1)
    print(result.model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
