"""Speed of the Pyro programs against hand-written PyTorch on the same networks.

    python -m notmiwae.experiments.bench            # a table
    python -m notmiwae.experiments.bench --json     # one JSON object

Setting: red wine under the paper's MNAR mechanism, not-MIWAE self-masking-known,
batch 16, K = 20, 128 hidden units. Training: ms per replica-iteration of the Pyro program
(``notmiwae.inference.training``) and of the hand-written step (``notmiwae.inference.reference``) at
R = 1, 5 and 10 replicas, measured in interleaved rounds in this one process (median of
the rounds). Imputation: seconds to impute red wine with L = 10,000 importance samples,
eagerly and with compiled weights (compiled before the rounds, its seconds reported
apart), and the seconds of the bare decoder forward pass on the same number of latent
samples (same row batches and chunks), the arithmetic floor; the three are timed in turn
in each round, and each ratio is the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import pyro
import torch
from torch.utils.flop_counter import FlopCounterMode

from notmiwae.inference.cli import positive_int
from notmiwae.inference.compiled import CompiledStep
from notmiwae.inference.device import default_device, flush_denormals
from notmiwae.inference.imputation import block_sizes, impute
from notmiwae.inference.noise import generators
from notmiwae.inference.reference import reference_step
from notmiwae.inference.training import TrainConfig, _iw_step, init_program, make_optimizer
from notmiwae.models import config_from_name
from notmiwae.models.program import NotMIWAE

from .protocol import prepare

MODEL = "notmiwae:selfmasking_known"


def red_wine(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x, mask = prepare("red")
    return (torch.tensor(np.where(mask, x, 0.0), dtype=torch.float32, device=device),
            torch.tensor(mask, device=device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_ms(x: torch.Tensor, mask: torch.Tensor, replicas: int, iterations: int, rounds: int,
                device: torch.device) -> tuple[float, float]:
    """Median ms per replica-iteration: (Pyro program, hand-written reference)."""
    config = config_from_name(MODEL, x.shape[1])
    seeds = list(range(replicas))
    train = TrainConfig(batch_size=16, num_particles=20)
    pyro_program = init_program(config, seeds, device)
    torch_program = init_program(config, seeds, device)
    steps = {"pyro": _iw_step(pyro_program, train, generators(seeds, device),
                              make_optimizer(pyro_program, 1e-3)),
             "torch": reference_step(torch_program,
                                     make_optimizer(torch_program, 1e-3),
                                     train.num_particles)}
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(x), (iterations, replicas, 16), generator=g).to(device)
    times: dict[str, list[float]] = {"pyro": [], "torch": []}
    with pyro.validation_enabled(False), flush_denormals():
        for rnd in range(rounds + 1):  # round 0 warms up
            for name, step in steps.items():
                _sync(device)
                start = time.perf_counter()
                for it in range(iterations):
                    step(x[idx[it]], mask[idx[it]])  # (R, B, D): a minibatch per replica
                _sync(device)
                if rnd:
                    times[name].append((time.perf_counter() - start) / iterations / replicas)
    return (1000 * float(np.median(times["pyro"])), 1000 * float(np.median(times["torch"])))


def compiled_ms(x: torch.Tensor, mask: torch.Tensor, replicas: int, iterations: int,
                rounds: int, device: torch.device, transpose_narrow: bool = True,
                ) -> tuple[float, float]:
    """Median ms per replica-iteration of the compiled step (:mod:`notmiwae.inference.
    compiled`), and the seconds its capture and compilation took (reported apart)."""
    config = config_from_name(MODEL, x.shape[1])
    seeds = list(range(replicas))
    train = TrainConfig(batch_size=16, num_particles=20)
    program = init_program(config, seeds, device)
    optimizer = make_optimizer(program, 1e-3)
    noise = generators(seeds, device)
    step = CompiledStep(program, train.num_particles, noise, optimizer,
                        eager=_iw_step(program, train, noise, optimizer),
                        transpose_narrow=transpose_narrow)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(x), (iterations, replicas, 16), generator=g).to(device)
    times = []
    with pyro.validation_enabled(False), flush_denormals():
        step(x[idx[0]], mask[idx[0]])  # capture and compile
        for rnd in range(rounds + 1):  # round 0 warms up
            _sync(device)
            start = time.perf_counter()
            for it in range(iterations):
                step(x[idx[it]], mask[idx[it]])
            _sync(device)
            if rnd:
                times.append((time.perf_counter() - start) / iterations / replicas)
    if step.failed:
        raise RuntimeError("the compiled step fell back to eager: nothing compiled to time")
    return 1000 * float(np.median(times)), step.compile_seconds


def arithmetic_floor_ms(x: torch.Tensor, mask: torch.Tensor, device: torch.device) -> dict:
    """FLOPs of one replica-iteration (forward and backward, counted by PyTorch's
    FlopCounterMode on the hand-written step) divided by the matmul throughput measured
    here on the step's largest product (320 x 128 by 128 x 128): ms it cannot beat."""
    config = config_from_name(MODEL, x.shape[1])
    program = init_program(config, [0], device)
    step = reference_step(program, make_optimizer(program, 1e-3), 20)
    xb, mb = x[None, :16], mask[None, :16]
    with FlopCounterMode(display=False) as counter:
        step(xb, mb)
    flops = counter.get_total_flops()
    a = torch.randn(320, 128, device=device)
    b = torch.randn(128, 128, device=device)
    for _ in range(50):
        a @ b
    _sync(device)
    repeats, start = 2000, time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    rate = 2 * 320 * 128 * 128 * repeats / (time.perf_counter() - start)
    return {"mflop_per_iteration": flops / 1e6, "matmul_gflops": rate / 1e9,
            "floor_ms": 1000 * flops / rate}


def bench_program(x: torch.Tensor, device: torch.device) -> NotMIWAE:
    """The benchmark's program (seed 0), untrained, for imputation."""
    return init_program(config_from_name(MODEL, x.shape[1]), [0], device).eval()


@torch.no_grad()
def imputation_seconds(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor, num_samples: int,
                       device: torch.device, compile: bool = False) -> float:
    """Seconds of ``impute`` on all rows with L = ``num_samples`` (default blocks)."""
    with flush_denormals():
        impute(program, x[:64], mask[:64], 100)  # warm up
        _sync(device)
        start = time.perf_counter()
        impute(program, x, mask, num_samples, compile=compile)
        _sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def imputation_compile_seconds(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                               num_samples: int) -> float:
    """Seconds to compile the program's imputation graph for the default block of
    ``impute`` on x (imputing that one block with it on the way)."""
    rows, chunk = block_sizes(x.device, None, None, num_samples)
    start = time.perf_counter()
    impute(program, x[:rows], mask[:rows], min(num_samples, chunk), compile=True)
    return time.perf_counter() - start


@torch.no_grad()
def decoder_seconds(n_rows: int, n_features: int, num_samples: int, device: torch.device,
                    row_batch: int | None = None, sample_chunk: int | None = None) -> float:
    """Seconds of the bare decoder forward (both heads) on n_rows x num_samples latent
    draws, in blocks of rows and samples: the arithmetic floor of imputation."""
    row_batch, sample_chunk = block_sizes(device, row_batch, sample_chunk, num_samples)
    program = init_program(config_from_name(MODEL, n_features), [0], device).eval()
    latent = program.prior().event_shape[0]
    with flush_denormals():
        _sync(device)
        start = time.perf_counter()
        for first in range(0, n_rows, row_batch):
            rows = min(row_batch, n_rows - first)
            for done in range(0, num_samples, sample_chunk):
                k = min(sample_chunk, num_samples - done)
                p_x = program.decoder(torch.randn(k, rows, latent, device=device))
                p_x.loc, p_x.scale  # noqa: B018 - both heads, as imputation needs them
        _sync(device)
    return time.perf_counter() - start


def imputation_rounds(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor, num_samples: int,
                      rounds: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds of eager imputation, compiled imputation (its graph already compiled) and
    the bare decoder, timed in turn in each of ``rounds`` rounds (after one to warm up),
    so that all see the machine in the same state; ratios are taken per round."""
    times: dict[str, list[float]] = {"eager": [], "compiled": [], "decoder": []}
    for rnd in range(rounds + 1):
        now = {"eager": imputation_seconds(program, x, mask, num_samples, device),
               "compiled": imputation_seconds(program, x, mask, num_samples, device, True),
               "decoder": decoder_seconds(len(x), x.shape[1], num_samples, device)}
        if rnd:  # round 0 warms up
            for key, seconds in now.items():
                times[key].append(seconds)
    return times


def median_ratio(times: list[float], references: list[float]) -> float:
    """The median over rounds of each round's ratio of ``times`` to ``references``."""
    return float(np.median(np.divide(times, references)))


def machine() -> str:
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def _counts(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notmiwae.experiments.bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--iterations", type=positive_int, default=200,
                        help="steps per round")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="interleaved rounds; the median is reported")
    parser.add_argument("--impute-samples", type=positive_int, default=10_000,
                        help="importance samples L for the imputation timing")
    parser.add_argument("--replicas", type=_counts, default=[1, 5, 10],
                        help="comma-separated replica counts R to time")
    parser.add_argument("--compiled", type=_counts, default=[1, 10],
                        help="replica counts R to time the compiled step at")
    parser.add_argument("--no-compiled", action="store_true",
                        help="skip the compiled training step (compiling takes a minute "
                        "or more); compiled imputation is still timed")
    parser.add_argument("--plain-products", action="store_true",
                        help="compiled step without computing narrow matrix products "
                             "transposed (notmiwae.inference.compiled), to compare")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for PyTorch (default: its own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device(args.device)
    x, mask = red_wine(device)
    result: dict = {"machine": machine(), "torch": torch.__version__, "pyro": pyro.__version__}
    for r in args.replicas:
        pyro_ms, torch_ms = training_ms(x, mask, r, args.iterations // r * r or r,
                                        args.rounds, device)
        result[f"pyro_ms_r{r}"], result[f"torch_ms_r{r}"] = pyro_ms, torch_ms
        result[f"ratio_r{r}"] = pyro_ms / torch_ms
    compile_seconds = 0.0
    for r in [] if args.no_compiled else args.compiled:
        result[f"compiled_ms_r{r}"], seconds = compiled_ms(
            x, mask, r, args.iterations // r * r or r, args.rounds, device,
            not args.plain_products)
        compile_seconds += seconds
        result[f"compile_seconds_r{r}"] = seconds
        if "torch_ms_r1" in result:
            result[f"compiled_over_handwritten_r1_r{r}"] = (result[f"compiled_ms_r{r}"]
                                                          / result["torch_ms_r1"])
    if not args.no_compiled:
        result["compile_seconds"] = compile_seconds
        result["narrow_products_transposed"] = not args.plain_products
        floor = arithmetic_floor_ms(x, mask, device)
        result.update(floor)
        for r in args.compiled:
            result[f"compiled_over_floor_r{r}"] = result[f"compiled_ms_r{r}"] / floor["floor_ms"]
    samples = args.impute_samples
    program = bench_program(x, device)
    result["impute_compile_seconds"] = imputation_compile_seconds(program, x, mask, samples)
    times = imputation_rounds(program, x, mask, samples, args.rounds, device)
    result[f"impute_seconds_red_L{samples}"] = float(np.median(times["eager"]))
    result[f"compiled_impute_seconds_red_L{samples}"] = float(np.median(times["compiled"]))
    result[f"decoder_floor_seconds_red_L{samples}"] = float(np.median(times["decoder"]))
    result["impute_ratio"] = median_ratio(times["eager"], times["decoder"])
    result["compiled_impute_ratio"] = median_ratio(times["compiled"], times["decoder"])
    # For scale: the same decoder work in large blocks (256 rows x 500 samples), the way a
    # straightforward implementation runs it.
    result[f"decoder_large_blocks_seconds_red_L{samples}"] = decoder_seconds(
        len(x), x.shape[1], samples, device, 256, 500)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result, args.impute_samples))
    return 0


def table(result: dict, samples: int) -> str:
    lines = [f"machine: {result['machine']}; torch {result['torch']}, pyro {result['pyro']}", "",
             "| replicas R | Pyro program (ms / replica-iteration) | hand-written (ms) | ratio |",
             "|---|---|---|---|"]
    for key in result:
        if key.startswith("pyro_ms_r"):
            r = key.removeprefix("pyro_ms_r")
            lines.append(f"| {r} | {result[key]:.3f} | {result[f'torch_ms_r{r}']:.3f} | "
                         f"{result[f'ratio_r{r}']:.2f} |")
    compiled = [k.removeprefix("compiled_ms_r") for k in result if k.startswith("compiled_ms_r")]
    if compiled:
        lines += ["", "| replicas R | compiled step (ms / replica-iteration) | / hand-written at "
                  "R = 1 | / arithmetic floor | compile seconds |", "|---|---|---|---|---|"]
        for r in compiled:
            lines.append(f"| {r} | {result[f'compiled_ms_r{r}']:.3f} | "
                         f"{result.get(f'compiled_over_handwritten_r1_r{r}', float('nan')):.2f} | "
                         f"{result[f'compiled_over_floor_r{r}']:.2f} | "
                         f"{result[f'compile_seconds_r{r}']:.0f} |")
        lines += ["", "narrow matrix products computed transposed: "
                  f"{'yes' if result.get('narrow_products_transposed', True) else 'no'}"]
        lines += ["", f"arithmetic floor: {result['mflop_per_iteration']:.1f} MFLOP per "
                  f"replica-iteration at {result['matmul_gflops']:.1f} GFLOP/s (matmul, "
                  f"measured here) = {result['floor_ms']:.3f} ms"]
    lines += ["", f"| red wine, L = {samples} | seconds |", "|---|---|",
              f"| imputation (`notmiwae.inference.imputation.impute`, default blocks) | "
              f"{result[f'impute_seconds_red_L{samples}']:.2f} |",
              f"| the same, `compile=True` (compiling apart: "
              f"{result['impute_compile_seconds']:.1f} s) | "
              f"{result[f'compiled_impute_seconds_red_L{samples}']:.2f} |",
              f"| bare decoder forward, same blocks (the floor) | "
              f"{result[f'decoder_floor_seconds_red_L{samples}']:.2f} |",
              f"| ratio (median of the rounds' ratios) | {result['impute_ratio']:.2f} |",
              f"| ratio, compiled (median of the rounds' ratios) | "
              f"{result['compiled_impute_ratio']:.2f} |",
              f"| bare decoder forward, large blocks (256 rows x 500 samples) | "
              f"{result[f'decoder_large_blocks_seconds_red_L{samples}']:.2f} |"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
