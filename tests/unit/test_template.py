"""template.yaml, the code and events/ agree: every function imports and has an event, and the
routes of the template are exactly the routes of the code."""

from __future__ import annotations

import json
import re

import pytest

from local import openapi, paths, runtime, template


def _code_routes() -> set[str]:
    found = set()
    for function in {r.function for r in template.routes()}:
        app = runtime.load_module(function).app
        for route in app._static_routes + app._dynamic_routes:
            path = re.sub(r"<(\w+)>", r"{\1}", route.path)
            found.add(f"{route.method} {path}")
    return found


def test_every_function_has_an_importable_handler_and_an_event() -> None:
    functions = template.functions()
    assert functions
    for function in functions:
        assert callable(runtime.load_handler(function)), function.logical_id
        event_file = paths.ROOT / "events" / f"{function.event_name}.json"
        assert event_file.exists(), f"no sample event for {function.logical_id}"
        json.loads(event_file.read_text())


def test_template_routes_equal_code_routes() -> None:
    template_routes = {r.route_key for r in template.routes()}
    assert template_routes == _code_routes()


# The one function that answers several routes: the xAPI resources this LRS does not offer, all
# with the same 501 (functions/xapi_not_supported).
SHARED_FUNCTIONS = {"XapiNotSupportedFunction"}


@pytest.mark.parametrize("route", template.routes(), ids=lambda r: r.route_key)
def test_one_function_per_route(route: template.Route) -> None:
    same_function = [r for r in template.routes() if r.function == route.function]
    if route.function.logical_id in SHARED_FUNCTIONS:
        assert all(r.path.startswith("/xapi/") for r in same_function)
    else:
        assert same_function == [route]


def test_committed_openapi_document_is_current() -> None:
    committed = openapi.OUTPUT.read_text()
    assert committed == openapi.render(), "stale: run `python -m local.openapi`"
    doc = json.loads(committed)
    documented = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    assert documented == {r.route_key for r in template.routes()}


def _pins(path: str) -> dict[str, str]:
    pins = {}
    for line in (paths.ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line and not line.startswith("-r"):
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


def test_function_requirements_pin_what_the_tests_run() -> None:
    dev = _pins("requirements/reports.txt") | _pins("layers/common/requirements.txt")
    for function in template.functions():
        requirements = paths.ROOT / function.code_uri / "requirements.txt"
        if requirements.exists():
            for name, version in _pins(str(requirements.relative_to(paths.ROOT))).items():
                assert dev.get(name) == version, f"{requirements}: {name}=={version} differs from the dev pins"
