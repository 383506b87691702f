"""Time ``bench.analysis.svcca.svcca`` at 2048 neurons x 20,000 datapoints in float64 (issue 5's speed target).

The two layers share a 256-dimensional signal plus independent noise, like a network before and after fine-tuning.
Prints the seconds of each repeat (wall clock) and the machine's load, since the cores are shared.

    python benchmarks/svcca_speed.py                   # 2048 x 20,000, float64, both rules
    python benchmarks/svcca_speed.py --neurons 512 --datapoints 5000 --repeats 3 --dtype float32
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.analysis.svcca import svcca


def make_layers(n_datapoints: int, n_neurons: int, *, shared: int = 256,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 activation matrices (n_datapoints, n_neurons) with ``shared`` common directions plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_datapoints, shared))
    x = z @ rng.standard_normal((shared, n_neurons)) + rng.standard_normal((n_datapoints, n_neurons))
    y = z @ rng.standard_normal((shared, n_neurons)) + rng.standard_normal((n_datapoints, n_neurons))
    return np.maximum(x, 0.0) + 0.1 * x, y  # a leaky-ReLU-like layer and a linear one


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=2048)
    parser.add_argument("--datapoints", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--rules", nargs="+", default=["singular_values", "variance"],
                        choices=["singular_values", "variance"])
    args = parser.parse_args(argv)
    x, y = make_layers(args.datapoints, args.neurons)
    print(f"svcca on {args.datapoints} x {args.neurons} ({args.dtype}), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for rule in args.rules:
        for _ in range(args.repeats):
            start = time.perf_counter()
            value = svcca(x, y, rule=rule, dtype=args.dtype)
            seconds = time.perf_counter() - start
            print(f"  rule={rule:16s} svcca={value:.10f}  {seconds:.2f} s  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
