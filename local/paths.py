"""Where things are in the repository, for the local tooling."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
STATE = ROOT / ".local"  # everything the local tooling keeps between runs (git-ignored)
OPENAPI_FILE = ROOT / "functions" / "get_openapi" / "openapi.json"
WEB_DIST = ROOT / "web" / "dist"
