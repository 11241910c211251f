"""Invoke one function of template.yaml with an event file, in-process: the local stand-in for
`sam local invoke <LogicalId> -e events/<file>.json` (which needs Docker). This is how the
scheduled functions are run by hand.

    python -m scripts.invoke RefreshComparisonFunction events/refresh_comparison.json
    python -m scripts.invoke rollup_analytics events/rollup_analytics_backfill.json
    python -m scripts.invoke GetMeFunction events/get_me.json

The function is named by its logical id or its directory under functions/. It gets the
environment `make run` gives the functions (scripts.local.function_env): the `ms8` database
(started, migrated and given the demo data if need be, stopped again afterwards if this command
started it), the template's variables, and the owner URL only where the template gives the
function the owner secret (the scheduled jobs). S3 is the running `make run`'s, else a moto
server for this call alone.

The response goes to stdout as JSON, the function's logs to stderr; exit status 1 if it raised.
An HTTP API event is passed as it is: its claims stand for a token API Gateway already verified.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "layers" / "common")) if p not in sys.path]

from scripts import apigw, local  # noqa: E402


def find_function(ref: str) -> apigw.Function:
    """A template function by logical id, or by CodeUri directory (`get_me`, `functions/get_me/`)."""
    name = ref.rstrip("/").removeprefix("functions/")
    for function in apigw.functions():
        if ref in (function.logical_id, function.code_uri) or name == function.event_name:
            return function
    known = ", ".join(sorted(f.logical_id for f in apigw.functions()))
    raise SystemExit(f"no function {ref!r} in template.yaml; one of: {known}")


def load_event(path: str) -> Any:
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = ROOT / path
    return json.loads(file.read_text())


def invoke(function: apigw.Function, event: Any) -> Any:
    """Call the handler as Lambda would; its prints and logs go to stderr, not into the answer."""
    with contextlib.redirect_stdout(sys.stderr):
        return apigw.invoke(function, event)


def _uses_bucket(function: apigw.Function) -> bool:
    return "ReportsBucket" in json.dumps(apigw.template()["Resources"][function.logical_id])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="logical id (GetMeFunction) or functions/ directory (get_me)")
    parser.add_argument("event", help="the event file, e.g. events/get_me.json")
    args = parser.parse_args(argv)
    function = find_function(args.function)
    event = load_event(args.event)
    started = local.prepare_database()
    s3: local.S3 | None = None
    try:
        state = local.running_state()
        endpoint = state["s3"] if state else None
        if endpoint is None and _uses_bucket(function):
            s3 = local.S3(port=0)
            endpoint = s3.start(local.function_env(None, [function.logical_id])["REPORTS_BUCKET"])
        local.apply_function_env(endpoint, [function.logical_id])
        try:
            result = invoke(function, event)
        except Exception:
            traceback.print_exc()
            return 1
        print(json.dumps(result, indent=2, default=str))
        return 0
    finally:
        from ms8 import db

        db.runtime.reset()
        db.owner.reset()
        if s3 is not None:
            s3.stop()
        local.stop_database(started)


if __name__ == "__main__":
    sys.exit(main())
