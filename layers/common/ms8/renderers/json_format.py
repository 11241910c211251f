"""JSON: one document, described by `SCHEMA` (JSON Schema 2020-12) and versioned by
`schemaVersion` (major.minor: a new minor only adds optional fields).

    {
      "schemaVersion": "1.0",
      "report": {"id", "kind": "personal"|"cohort"|"organization", "generatedAt", "granularity": "daily",
                 "subject"?},                                       # whom a cohort report is about
      "organization": {"id", "name"},
      "person": {"id", "name", "role"},
      "period": {"from", "to", "days", "timezone"},        # dates, both ends included
      "analyticsTypes": ["engagement", ...],
      "snapshots": [{"analyticsType", "metric", "value", "metrics": {name: number}, "updatedAt"}],
      "comparison": [{"analyticsType", "metric", "yourValue", "available", "peers"|null, "message"}],
      "series": [{"analyticsType", "description",
                  "metrics": [{"name", "label", "kind", "fold"}],
                  "rows": [{"date", "values": {name: number|null}}]}],     # one row per day
      "tables": [{"name", "title", "description",                  # cohort and organization reports
                  "columns": [{"name", "label", "kind"}],
                  "rows": [{column name: string|number|null}]}]    # dates as YYYY-MM-DD, instants ISO
    }

`snapshots` and `comparison` are empty in an organization report; `peers` is null unless the
peer group has at least 10 people.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from ms8.renderers.document import SCHEMA_VERSION, Cell, ReportData, Series, Table

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_DATE = {"type": "string", "format": "date"}
_DATETIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_TYPE = {"enum": ["learning_velocity", "engagement", "mastery", "skill_gap"]}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://ms8.example/schemas/learning-report-1.json",
    "title": "MS8 learning report",
    **_object({
        "schemaVersion": {"type": "string", "pattern": r"^1\.\d+$"},
        "report": _object({
            "id": _UUID,
            "kind": {"enum": ["personal", "cohort", "organization"]},
            "generatedAt": _DATETIME,
            "granularity": {"const": "daily"},
            "subject": {"type": "string"},
        }, optional=("subject",)),
        "organization": _object({"id": _UUID, "name": {"type": "string"}}),
        "person": _object({
            "id": _UUID, "name": {"type": "string"}, "role": {"enum": ["learner", "trainer", "org_admin"]},
        }),
        "period": _object({
            "from": _DATE, "to": _DATE, "days": {"type": "integer", "minimum": 1}, "timezone": {"type": "string"},
        }),
        "analyticsTypes": {"type": "array", "items": _TYPE, "uniqueItems": True},
        "snapshots": {"type": "array", "items": _object({
            "analyticsType": _TYPE,
            "metric": {"type": "string"},
            "value": _NUMBER_OR_NULL,
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "updatedAt": _DATETIME,
        })},
        "comparison": {"type": "array", "items": _object({
            "analyticsType": _TYPE,
            "metric": {"type": "string"},
            "yourValue": _NUMBER_OR_NULL,
            "available": {"type": "boolean"},
            "peers": {"oneOf": [
                {"type": "null"},
                _object({
                    "userCount": {"type": "integer", "minimum": 10},
                    "average": {"type": "number"}, "p25": {"type": "number"},
                    "p50": {"type": "number"}, "p75": {"type": "number"},
                }),
            ]},
            "message": {"type": ["string", "null"]},
        })},
        "series": {"type": "array", "items": _object({
            "analyticsType": _TYPE,
            "description": {"type": "string"},
            "metrics": {"type": "array", "minItems": 1, "items": _object({
                "name": {"type": "string"},
                "label": {"type": "string"},
                "kind": {"enum": ["count", "ratio", "number"]},
                "fold": {"enum": ["sum", "mean"]},
            })},
            "rows": {"type": "array", "items": _object({
                "date": _DATE,
                "values": {"type": "object", "additionalProperties": _NUMBER_OR_NULL},
            })},
        })},
        "tables": {"type": "array", "items": _object({
            "name": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "columns": {"type": "array", "minItems": 1, "items": _object({
                "name": {"type": "string"},
                "label": {"type": "string"},
                "kind": {"enum": ["text", "date", "datetime", "count", "ratio", "number"]},
            })},
            "rows": {"type": "array", "items": {
                "type": "object", "additionalProperties": {"type": ["string", "number", "null"]},
            }},
        })},
    }, optional=("tables",)),
}


def _cell(value: Cell) -> str | int | float | None:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _table(t: Table) -> dict[str, Any]:
    names = [c.name for c in t.columns]
    return {
        "name": t.name, "title": t.title, "description": t.description,
        "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in t.columns],
        "rows": [{n: _cell(v) for n, v in zip(names, row, strict=True)} for row in t.rows],
    }


def _series(s: Series, days: list[str]) -> dict[str, Any]:
    names = [m.name for m in s.metrics]
    columns = [s.values[n] for n in names]
    return {
        "analyticsType": s.analytics_type,
        "description": s.description,
        "metrics": [{"name": m.name, "label": m.label, "kind": m.kind, "fold": m.fold} for m in s.metrics],
        "rows": [
            {"date": day, "values": dict(zip(names, (c[i] for c in columns), strict=True))}
            for i, day in enumerate(days)
        ],
    }


def document(data: ReportData) -> dict[str, Any]:
    """The report as a JSON-ready dict (see SCHEMA)."""
    days = [d.isoformat() for d in data.days]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "report": {
            "id": str(data.report_id), "kind": data.kind,
            "generatedAt": data.generated_at.isoformat(), "granularity": "daily",
            **({"subject": data.subject} if data.subject else {}),
        },
        "organization": {"id": str(data.organization_id), "name": data.organization_name},
        "person": {"id": str(data.user_id), "name": data.user_name, "role": data.role},
        "period": {
            "from": data.period_start.isoformat(), "to": data.period_end.isoformat(),
            "days": len(days), "timezone": data.timezone,
        },
        "analyticsTypes": list(data.analytics_types),
        "snapshots": [
            {"analyticsType": s.analytics_type, "metric": s.metric, "value": s.value, "metrics": s.metrics,
             "updatedAt": s.updated_at.isoformat()}
            for s in data.snapshots
        ],
        "comparison": [
            {
                "analyticsType": c.analytics_type, "metric": c.metric, "yourValue": c.your_value,
                "available": c.available,
                "peers": {"userCount": c.user_count, "average": c.average, "p25": c.p25, "p50": c.p50,
                          "p75": c.p75} if c.available else None,
                "message": c.message,
            }
            for c in data.comparison
        ],
        "series": [_series(s, days) for s in data.series],
        **({"tables": [_table(t) for t in data.tables]} if data.tables else {}),
    }


def render(data: ReportData) -> bytes:
    return json.dumps(document(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
