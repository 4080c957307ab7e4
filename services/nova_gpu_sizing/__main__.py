"""nova-gpu-sizing: write llama-server's sized flags to a systemd EnvironmentFile.

    python -m nova_gpu_sizing --model M.gguf [--ctx-per-slot N] [--parallel N]
        [--override key=value ...] --env-file /run/nova-llama-server/sized.env

The file holds one variable, NOVA_LLAMA_SIZED_ARGS, meant to be appended last to llama-server's
command line (``ExecStart=... $NOVA_LLAMA_SIZED_ARGS``): llama.cpp lets the last occurrence of
a flag win, so the sized values replace the unit's static ones. The choices and the reasons go
to stderr (the journal). On error the file is removed (the static flags apply) and it exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .gguf import GGUFError, read_model_info
from .sizing import OVERRIDE_KEYS, SizingPlan, SizingRequest, parse_overrides, plan_flags
from .vram import GpuMemory, MiB, query_gpus

ENV_VAR = "NOVA_LLAMA_SIZED_ARGS"
PROG = "nova-gpu-sizing"


def _gpu_spec(value: str) -> GpuMemory:
    total, _, used = value.partition(":")
    try:
        return GpuMemory(name="given", total=int(total) * MiB, used=int(used or 0) * MiB)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not TOTAL_MIB[:USED_MIB]: {value!r}") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="GGUF file to serve")
    parser.add_argument("--ctx-per-slot", type=int, default=SizingRequest.ctx_per_slot)
    parser.add_argument("--parallel", type=int, default=SizingRequest.parallel)
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"fix one choice; keys: {', '.join(sorted(OVERRIDE_KEYS))}",
    )
    parser.add_argument("--env-file", help="EnvironmentFile to write")
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        help="fail (static flags apply) rather than size for the CPU when no GPU is visible",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--no-gpu", action="store_true", help="size for the CPU only")
    gpu.add_argument(
        "--gpu-mib",
        type=_gpu_spec,
        action="append",
        metavar="TOTAL[:USED]",
        help="size for these GPUs instead of asking NVML/nvidia-smi (repeatable)",
    )
    return parser


def log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def render_env(plan: SizingPlan, model: str) -> str:
    lines = [f"# Written by {PROG} for {model}; rewritten at every start."]
    lines += [f"# {reason}" for reason in plan.reasons]
    lines.append(f'{ENV_VAR}="{" ".join(plan.args())}"')
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env_file = Path(args.env_file) if args.env_file else None
    try:
        if args.ctx_per_slot < 1 or args.parallel < 1:
            raise ValueError("--ctx-per-slot and --parallel must be positive")
        request = SizingRequest(
            ctx_per_slot=args.ctx_per_slot,
            parallel=args.parallel,
            overrides=parse_overrides(args.override),
        )
        model = read_model_info(args.model)
        gpus = [] if args.no_gpu else (args.gpu_mib or query_gpus())
        if args.require_gpu and not gpus:
            raise ValueError("--require-gpu: NVML and nvidia-smi see no NVIDIA GPU")
        plan = plan_flags(model, gpus, request)
    except (OSError, GGUFError, ValueError) as e:
        log(f"error: {e}; the unit's static flags apply")
        if env_file is not None:
            env_file.unlink(missing_ok=True)
        return 1
    log(
        f"model {model.architecture}, {model.block_count} layers, {model.kv_heads_total}"
        f" KV heads in all, head dim {model.key_length}/{model.value_length},"
        f" trained context {model.context_length}, file {model.file_size / MiB:.0f} MiB"
    )
    for reason in plan.reasons:
        log(reason)
    log("chosen: " + " ".join(plan.args()))
    if env_file is not None:
        write_atomically(env_file, render_env(plan, args.model))
    if args.json:
        print(json.dumps({"flags": plan.flags, "args": plan.args(), "reasons": plan.reasons}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
