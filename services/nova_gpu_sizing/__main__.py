"""nova-gpu-sizing: start llama-server with flags sized to the GPU's free memory and the model.

    nova-gpu-sizing [--require-gpu] [--override key=value ...] -- LLAMA_SERVER FLAG...
    nova-gpu-sizing --model M.gguf [--ctx-per-slot N] [--parallel N] [--json]

The first form is the unit's ExecStart. The flags after the program are the request (the
llama_server role's, from the inventory): the model (``--model``), the context (``--ctx-size``,
shared by ``--parallel`` slots) and everything else llama-server needs. The sizing replaces the
options it decides (GPU layers, context, slots, flash attention, KV cache types, batch sizes
when overridden), in whatever spelling the request gives them, keeps the rest as requested, and
execs llama-server with that one complete command line: no option appears twice. When sizing
fails (an unreadable model, a bad override, anything else), it says why and execs llama-server
with the request unchanged. The exception is --require-gpu with no GPU visible: it says why and
exits 69 without starting llama-server, so the unit fails rather than serve on the CPU. Choices
and reasons go to stderr (the journal). --dry-run prints the command line instead of running it.

The second form only plans: it prints the choices and reasons (--json: as JSON on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence

from .gguf import GGUFError, ModelInfo, read_model_info
from .sizing import (
    OVERRIDE_KEYS,
    SizingPlan,
    SizingRequest,
    complete_args,
    parse_overrides,
    plan_flags,
    replaced_flags,
    requested_value,
)
from .vram import GpuMemory, MiB, query_gpus

PROG = "nova-gpu-sizing"
# Exit status when a required GPU is missing (EX_UNAVAILABLE): the unit fails, nothing runs.
EXIT_GPU_REQUIRED = 69


class GpuRequiredError(RuntimeError):
    """--require-gpu, and no NVIDIA GPU is visible."""


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
    parser.add_argument("--model", help="GGUF file to serve (default: the request's --model)")
    parser.add_argument(
        "--ctx-per-slot",
        type=int,
        help="context per slot (default: the request's --ctx-size / --parallel)",
    )
    parser.add_argument("--parallel", type=int, help="slots (default: the request's --parallel)")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"fix one choice; keys: {', '.join(sorted(OVERRIDE_KEYS))}",
    )
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        help="exit 69 rather than start llama-server on the CPU when no GPU is visible",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the command line instead of running it"
    )
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


def plan_for(args: argparse.Namespace, request: Sequence[str] = ()) -> tuple[ModelInfo, SizingPlan]:
    """Plan from the options, with the request's --model, --ctx-size and --parallel as defaults."""
    model_path = args.model or requested_value(request, "--model", "-m")
    if not model_path:
        raise ValueError("no model: pass --model, or --model in the request")
    parallel = args.parallel or int(
        requested_value(request, "--parallel", "-np") or SizingRequest.parallel
    )
    ctx_size = requested_value(request, "--ctx-size", "-c")
    ctx_per_slot = args.ctx_per_slot or (
        int(ctx_size) // parallel if ctx_size else SizingRequest.ctx_per_slot
    )
    if ctx_per_slot < 1 or parallel < 1:
        raise ValueError("the context per slot and the slots must be positive")
    sizing_request = SizingRequest(
        ctx_per_slot=ctx_per_slot, parallel=parallel, overrides=parse_overrides(args.override)
    )
    model = read_model_info(model_path)
    gpus = [] if args.no_gpu else (args.gpu_mib or query_gpus())
    if args.require_gpu and not gpus:
        raise GpuRequiredError(
            "a GPU is required (--require-gpu) but NVML and nvidia-smi see no NVIDIA GPU: "
            "llama-server does not start on the CPU. Check nvidia-smi, "
            "'journalctl -k -g NVRM' and 'dkms status'"
        )
    plan = plan_flags(model, gpus, sizing_request)
    log(
        f"model {model.architecture}, {model.block_count} layers, {model.kv_heads_total}"
        f" KV heads in all, head dim {model.key_length}/{model.value_length},"
        f" trained context {model.context_length}, file {model.file_size / MiB:.0f} MiB"
    )
    for reason in plan.reasons:
        log(reason)
    return model, plan


def run_sized(args: argparse.Namespace, command: list[str]) -> int:
    """Exec the program with the complete sized flags, or with the request when sizing fails.

    The one refusal: a required GPU that is not there. Serving on the CPU then would look
    healthy while being far slower (a silent fallback); the unit fails and says why instead.
    """
    program, request = command[0], command[1:]
    status = 0
    try:
        _, plan = plan_for(args, request)
        argv = [program, *complete_args(request, plan)]
        for change in replaced_flags(request, plan):
            log(f"requested {change}")
        log("chosen: " + " ".join(plan.args()))
    except GpuRequiredError as e:
        log(f"error: {e}")
        return EXIT_GPU_REQUIRED
    except Exception as e:  # any other failure: llama-server still starts, as requested
        log(f"error: {e}; llama-server starts with the requested flags")
        argv, status = [program, *request], 1
    if args.dry_run:
        print(shlex.join(argv))
        return status
    sys.stdout.flush()
    try:
        os.execv(program, argv)  # noqa: S606 - the unit's own program, from its ExecStart
    except OSError as e:
        log(f"cannot run {program}: {e}")
        return 127
    return 127  # not reached


def run_plan(args: argparse.Namespace) -> int:
    try:
        _, plan = plan_for(args)
    except (OSError, GGUFError, ValueError) as e:
        log(f"error: {e}")
        return 1
    log("chosen: " + " ".join(plan.args()))
    if args.json:
        print(json.dumps({"flags": plan.flags, "args": plan.args(), "reasons": plan.reasons}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
        if not command:
            build_parser().error("nothing to run after --")
    args = build_parser().parse_args(argv)
    return run_sized(args, command) if command else run_plan(args)


if __name__ == "__main__":
    sys.exit(main())
