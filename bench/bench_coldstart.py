"""Cold start: import time of each API handler module in a fresh interpreter.

Each function is imported the way Lambda does it (its CodeUri on sys.path beside the layer), in a
new Python process, several times; the table shows the median beside the baseline of importing
everything (Powertools resolver + Logger/Metrics/Tracer, pydantic, psycopg and boto3). API
functions run with POWERTOOLS_TRACE_DISABLED=true as template.yaml deploys them (see ms8.http).

    .venv/bin/python bench/bench_coldstart.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from local import template

ROOT = Path(__file__).resolve().parent.parent


TIMER = """
import sys, time
sys.path[:0] = {paths!r}
t = time.perf_counter()
{body}
print((time.perf_counter() - t) * 1000)
"""
BASELINE = """
import boto3, botocore.session, psycopg, pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities import parameters
boto3.client('s3', region_name='eu-west-1'); boto3.client('secretsmanager', region_name='eu-west-1')
import ms8.http, ms8.db, ms8.storage
Tracer()
"""
ENV = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-west-1",
       "POWERTOOLS_SERVICE_NAME": "bench", "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused"}


def measure(paths: list[str], body: str, runs: int) -> tuple[float, set[str]]:
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", TIMER.format(paths=paths, body=body)],
                             capture_output=True, text=True, env=ENV, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times), set()


def heavy_modules(paths: list[str], module: str) -> list[str]:
    probe = (f"import sys; sys.path[:0] = {paths!r}; import {module}; "
             "print(' '.join(m for m in ('boto3', 'botocore.session', 'aws_xray_sdk', 'openpyxl', 'reportlab') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, check=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    layer = str(ROOT / "layers" / "common")
    baseline, _ = measure([layer], BASELINE, args.runs)
    rows = []
    for function in sorted({r.function for r in template.routes()}, key=lambda f: f.event_name):
        paths = [str(ROOT / function.code_uri), layer]
        ms, _ = measure(paths, "import app", args.runs)
        rows.append((function.event_name, ms, heavy_modules(paths, "app")))
    print(f"{'function':<24} {'import ms':>10} {'baseline ms':>12} {'ratio':>6}  heavy modules loaded")
    for name, ms, heavy in rows:
        print(f"{name:<24} {ms:>10.0f} {baseline:>12.0f} {ms / baseline:>6.2f}  {' '.join(heavy) or '-'}")
    worst = max(ms for _, ms, _ in rows)
    print(f"\nworst {worst:.0f} ms (target < 300 ms); baseline (everything incl. boto3) {baseline:.0f} ms;"
          f" median of {args.runs} fresh interpreters each")
    # The target (docs/PERFORMANCE.md): < 300 ms where everything takes ~470 ms, i.e. a ratio under 0.64 on any machine.
    print(f"worst ratio to the baseline {worst / baseline:.2f} (target < {300 / 470:.2f}, load-independent)")


if __name__ == "__main__":
    main()
