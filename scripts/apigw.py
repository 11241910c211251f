"""What API Gateway does in front of the functions, for the local gateway, invoke and tests:
the routes of template.yaml and HTTP API v2 (payload format 2.0) events."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_uri: str
    handler: str

    @property
    def module_path(self) -> Path:
        return ROOT / self.code_uri / (self.handler.split(".")[0] + ".py")

    @property
    def event_name(self) -> str:
        return Path(self.code_uri).name


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /v1/users/{userId}
    function: Function

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def pattern(self) -> re.Pattern[str]:
        return _path_pattern(self.path)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None


@cache
def _path_pattern(path: str) -> re.Pattern[str]:
    """/v1/users/{userId} -> a regex with a named group per path parameter (compiled once)."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def functions() -> list[Function]:
    default_handler = template().get("Globals", {}).get("Function", {}).get("Handler", "app.lambda_handler")
    found = []
    for logical_id, res in template()["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        found.append(Function(logical_id, props["CodeUri"].rstrip("/"), props.get("Handler", default_handler)))
    return found


def routes() -> list[Route]:
    by_id = {f.logical_id: f for f in functions()}
    found = []
    for logical_id, res in template()["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                p = event["Properties"]
                found.append(Route(p["Method"].upper(), p["Path"], by_id[logical_id]))
    return found


def http_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None,
    route: Route | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    request_id: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An HTTP API v2 event as API Gateway sends it after its JWT authorizer accepted the token."""
    now = time.time()
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    is_base64 = isinstance(body, bytes)
    body_text = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    rid = request_id or str(uuid.uuid4())
    route_key = route.route_key if route else f"{method} {path}"
    authorizer = (
        {"jwt": {"claims": claims, "scopes": str(claims.get("scope", "")).split() or None}}
        if claims is not None else None
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method, "path": path, "protocol": "HTTP/1.1",
                "sourceIp": source_ip, "userAgent": headers.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body_text is not None:
        event["body"] = body_text
    return event


def user_claims(sub: str, **extra: Any) -> dict[str, Any]:
    """The claims of a user's access token, as the authorizer passes them on."""
    now = int(time.time())
    return {"sub": sub, "token_use": "access", "iat": now, "exp": now + 3600, **extra}


def service_claims(client_id: str, scopes: list[str], prefix: str = "ms8/") -> dict[str, Any]:
    """The claims of a platform service's client-credentials token."""
    now = int(time.time())
    return {
        "sub": client_id, "client_id": client_id, "token_use": "access",
        "scope": " ".join(prefix + s for s in scopes), "iat": now, "exp": now + 3600,
    }


def json_body(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body) if body else None


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
        import importlib.util
        import sys

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


def function_by_dir(name: str) -> Function:
    """The template function whose CodeUri is functions/<name>/."""
    for f in functions():
        if f.event_name == name:
            return f
    raise KeyError(name)


def invoke(function: Function, event: dict[str, Any]) -> Any:
    """Call a function's handler in-process with an event, as `sam local invoke` would."""
    rid = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    return load_handler(function)(event, LocalContext(function.logical_id, rid))
