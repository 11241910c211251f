"""What Lambda does with a function of template.yaml, in this process: import its module from its
CodeUri once (as a container does on a cold start), and call its handler with an event and a
context object."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local.template import Function


@dataclass
class LocalContext:
    """The parts of the Lambda context object that Powertools and handlers read."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    timeout_ms: int = 10_000

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_handlers: dict[str, Any] = {}


def load_module(function: Function) -> Any:
    """Import a function's module from its CodeUri, once, as Lambda would."""
    if function.logical_id not in _handlers:
        name = f"functions_{function.event_name}_{function.handler.split('.')[0]}"
        spec = importlib.util.spec_from_file_location(name, function.module_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _handlers[function.logical_id] = module
    return _handlers[function.logical_id]


def load_handler(function: Function) -> Any:
    """The function's Lambda entry point (`Handler` of template.yaml)."""
    return getattr(load_module(function), function.handler.split(".")[1])


def invoke(function: Function, event: dict[str, Any]) -> Any:
    """Call a function's handler in-process with an event, as `sam local invoke` would."""
    rid = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    return load_handler(function)(event, LocalContext(function.logical_id, rid))
