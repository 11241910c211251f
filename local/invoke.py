"""Invoke one function of template.yaml with an event file, in-process: the local stand-in for
`sam local invoke <LogicalId> -e events/<file>.json` (which needs Docker). This is how the
scheduled functions are run by hand.

    python -m local.invoke RefreshComparisonFunction events/refresh_comparison.json
    python -m local.invoke rollup_analytics events/rollup_analytics_backfill.json
    python -m local.invoke GetMeFunction events/get_me.json

The function is named by its logical id or its directory under functions/. It gets the
environment `make run` gives the functions (local.stack.function_env): the `ms8` database
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

from local import runtime, s3, stack, state, template
from local.paths import ROOT


def find_function(ref: str) -> template.Function:
    """A template function by logical id, or by CodeUri directory (`get_me`, `functions/get_me/`)."""
    name = ref.rstrip("/").removeprefix("functions/")
    for function in template.functions():
        if ref in (function.logical_id, function.code_uri) or name == function.event_name:
            return function
    known = ", ".join(sorted(f.logical_id for f in template.functions()))
    raise SystemExit(f"no function {ref!r} in template.yaml; one of: {known}")


def load_event(path: str) -> Any:
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = ROOT / path
    return json.loads(file.read_text())


def invoke(function: template.Function, event: Any) -> Any:
    """Call the handler as Lambda would; its prints and logs go to stderr, not into the answer."""
    with contextlib.redirect_stdout(sys.stderr):
        return runtime.invoke(function, event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="logical id (GetMeFunction) or functions/ directory (get_me)")
    parser.add_argument("event", help="the event file, e.g. events/get_me.json")
    args = parser.parse_args(argv)
    function = find_function(args.function)
    event = load_event(args.event)
    started = stack.prepare_database()
    store: s3.S3 | None = None
    try:
        running = state.running_state()
        endpoint = running["s3"] if running else None
        if endpoint is None and template.uses_bucket(function):
            store = s3.S3(port=0, data_dir=None)
            endpoint = store.start(stack.function_env(None, [function.logical_id])["REPORTS_BUCKET"])
        stack.apply_function_env(endpoint, [function.logical_id])
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
        if store is not None:
            store.stop()
        stack.stop_database(started)


if __name__ == "__main__":
    sys.exit(main())
