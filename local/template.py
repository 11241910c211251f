"""The one reader of template.yaml for everything local: the functions, the HTTP API's routes (with
their authorizer), its CORS configuration and the functions' environment. The gateway, the event
builders, `invoke`, the OpenAPI generator and the tests all ask here, so the template is the only
list of routes and variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from local.paths import ROOT, TEMPLATE


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@cache
def document() -> dict[str, Any]:
    """template.yaml as a dict (short-form tags as `{"Ref": ...}` etc.), read once per process."""
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {k: v for k, v in document()["Resources"].items() if v.get("Type") == kind}


def parameter_default(name: str) -> Any:
    return document().get("Parameters", {}).get(name, {}).get("Default")


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
        """The directory under functions/ (and the name of its sample event in events/)."""
        return Path(self.code_uri).name

    @property
    def properties(self) -> dict[str, Any]:
        return document()["Resources"][self.logical_id]["Properties"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /v1/users/{userId}
    function: Function
    authorized: bool = True  # behind the API's JWT authorizer, or `Auth: {Authorizer: NONE}`

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
    """/v1/users/{userId} -> a regex with a named group per path parameter; {proxy+} takes the rest."""
    pattern = re.escape(path)
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", pattern)
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern) + "$")


@cache
def functions() -> tuple[Function, ...]:
    default_handler = document().get("Globals", {}).get("Function", {}).get("Handler", "app.lambda_handler")
    return tuple(
        Function(logical_id, props["CodeUri"].rstrip("/"), props.get("Handler", default_handler))
        for logical_id, props in ((i, r["Properties"]) for i, r in resources("AWS::Serverless::Function").items())
    )


@dataclass(frozen=True)
class Schedule:
    function: Function
    expression: str  # rate(1 minute), cron(30 1 * * ? *)

    @property
    def rate_seconds(self) -> int | None:
        """The period of a rate() expression in seconds; None for a cron() one."""
        found = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", self.expression.strip())
        if not found:
            return None
        return int(found.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[found.group(2)]


def schedules() -> tuple[Schedule, ...]:
    """The functions' EventBridge Scheduler events (Type ScheduleV2), their expressions resolved
    from the parameters' defaults."""
    found = []
    for function in functions():
        for event in (function.properties.get("Events") or {}).values():
            if event.get("Type") != "ScheduleV2":
                continue
            expression = event["Properties"]["ScheduleExpression"]
            if isinstance(expression, dict) and "Ref" in expression:
                expression = parameter_default(expression["Ref"])
            found.append(Schedule(function, str(expression)))
    return tuple(found)


def _default_authorizer() -> str | None:
    for res in resources("AWS::Serverless::HttpApi").values():
        found = (res["Properties"].get("Auth") or {}).get("DefaultAuthorizer")
        if found:
            return str(found)
    return None


@cache
def routes() -> tuple[Route, ...]:
    """Every `HttpApi` event of the template; a route is authorized unless it says `Authorizer: NONE`."""
    default_auth = _default_authorizer()
    found = []
    for function in functions():
        for event in (function.properties.get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                p = event["Properties"]
                auth = (p.get("Auth") or {}).get("Authorizer", default_auth)
                found.append(Route(p["Method"].upper(), p["Path"], function, auth not in (None, "NONE")))
    return tuple(found)


def function_by_dir(name: str) -> Function:
    """The template function whose CodeUri is functions/<name>/."""
    for f in functions():
        if f.event_name == name:
            return f
    raise KeyError(name)


def _as_list(value: Any) -> list[str]:
    """A template value as a list of strings: a `!Ref` to a parameter replaced by its default;
    `!Split`, `!Join` and `!Sub` of those evaluated; items naming a resource's attribute (known
    only once deployed, e.g. the web app's CloudFront domain) left out."""
    return [v for v in _evaluate(value) if "${" not in v]


def _evaluate(value: Any) -> list[str]:
    if isinstance(value, dict) and "Ref" in value:
        default = parameter_default(value["Ref"])
        items = default if isinstance(default, list) else str(default or "").split(",")
        return [str(v).strip() for v in items if str(v).strip()]
    if isinstance(value, dict) and "Join" in value:
        sep, parts = value["Join"]
        return [sep.join(_evaluate(parts))]
    if isinstance(value, dict) and "Split" in value:
        sep, inner = value["Split"]
        return [v.strip() for s in _evaluate(inner) for v in s.split(sep) if v.strip()]
    if isinstance(value, dict) and "Sub" in value:
        text, names = (value["Sub"], {}) if isinstance(value["Sub"], str) else value["Sub"]
        for name, inner in names.items():
            text = text.replace("${" + name + "}", ",".join(_evaluate(inner)))
        return [text]
    if isinstance(value, list):
        return [s for v in value for s in _evaluate(v)]
    return [str(value)]


@dataclass(frozen=True)
class CorsConfiguration:
    """The HttpApi's CorsConfiguration, parameters resolved to their defaults."""

    origins: tuple[str, ...]
    headers: tuple[str, ...]
    methods: tuple[str, ...]
    max_age: int | None


def cors(extra_origins: str = "") -> CorsConfiguration | None:
    """The API's CORS configuration; `extra_origins` (comma-separated) are allowed as well (locally:
    MS8_CORS_ORIGINS, for a front end served from another origin)."""
    for res in resources("AWS::Serverless::HttpApi").values():
        cfg = res["Properties"].get("CorsConfiguration")
        if cfg is not None:
            origins = _as_list(cfg.get("AllowOrigins", [])) + [o.strip() for o in extra_origins.split(",") if o.strip()]
            return CorsConfiguration(
                tuple(origins),
                tuple(h.lower() for h in _as_list(cfg.get("AllowHeaders", []))),
                tuple(m.upper() for m in _as_list(cfg.get("AllowMethods", []))),
                cfg.get("MaxAge"),
            )
    return None


def function_environment(logical_ids: list[str], bucket: str) -> tuple[dict[str, str], bool]:
    """The Globals and per-function environment of these functions, resolved for local use (a
    `!Ref` to a parameter gives its default, to the bucket the local bucket), and whether any of
    them gets the owner secret (the scheduled jobs do)."""
    sections = [document().get("Globals", {}).get("Function", {})]
    sections += [document()["Resources"][i]["Properties"] for i in logical_ids]
    env: dict[str, str] = {}
    owner = False
    for props in sections:
        for name, value in ((props.get("Environment") or {}).get("Variables") or {}).items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            if name in ("DB_SECRET_ARN", "OWNER_DB_SECRET_ARN"):
                owner = owner or name == "OWNER_DB_SECRET_ARN"  # locally: database URLs instead
            elif ref == "ReportsBucket":
                env[name] = bucket
            elif ref is not None and parameter_default(ref) is not None:
                default = parameter_default(ref)
                env[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            elif not isinstance(value, dict):
                env[name] = str(value)
    return env, owner


def uses_bucket(function: Function) -> bool:
    """Whether the template gives this function the reports bucket."""
    return "ReportsBucket" in repr(function.properties)

