"""The documented ranges of analytics fields (ms8.domain.bounds), and the write model using them."""

from __future__ import annotations

import math

import pydantic
import pytest

from ms8.domain import bounds
from ms8.schemas.analytics import AnalyticsBatch
from ms8.schemas.base import ANALYTICS_TYPES, HEADLINE_METRIC


@pytest.mark.parametrize(("analytics_type", "data"), [
    ("mastery", {"mastery": 0.0}), ("mastery", {"mastery": 1}), ("mastery", {"mastery": None}),
    ("mastery", {"mastery": 0.5, "skills": {"sql": 0.9}, "assessments": 3}),
    ("learning_velocity", {"velocity": 1000, "trend": -1000, "completions": 12}),
    ("engagement", {"engagement": 0.3, "active_days": 30, "minutes": 43200.0, "sessions": 0}),
    ("skill_gap", {"gap": 0.2, "skills": {"sql": 0.1}, "targeted_skills": 1}),
    ("mastery", {"mastery": 0.5, "note": "free text", "flag": True, "n": -5, "meta": {"a": 1, "b": "x"}}),
    ("engagement", {"active_days": 12.0}),  # a whole float is an integer in JSON
])
def test_values_in_range_pass(analytics_type: str, data: dict[str, object]) -> None:
    assert bounds.data_errors(analytics_type, data) == []


@pytest.mark.parametrize(("analytics_type", "data", "field"), [
    ("mastery", {"mastery": 1e200}, "data.mastery"),
    ("mastery", {"mastery": -0.01}, "data.mastery"),
    ("mastery", {"mastery": math.nan}, "data.mastery"),
    ("mastery", {"mastery": math.inf}, "data.mastery"),
    ("mastery", {"mastery": "0.5"}, "data.mastery"),
    ("mastery", {"mastery": True}, "data.mastery"),
    ("engagement", {"engagement": 1.0001}, "data.engagement"),
    ("engagement", {"active_days": 31}, "data.active_days"),
    ("engagement", {"active_days": 2.5}, "data.active_days"),
    ("engagement", {"engagement": None}, "data.engagement"),
    ("learning_velocity", {"velocity": 1000.5}, "data.velocity"),
    ("learning_velocity", {"completions": 10**400}, "data.completions"),
    ("skill_gap", {"gap": 2}, "data.gap"),
    ("mastery", {"skills": {"sql": 1.5}}, "data.skills.sql"),
    ("mastery", {"skills": [0.5]}, "data.skills"),
    ("mastery", {"extra": 1e13}, "data.extra"),
    ("mastery", {"extra": 10**400}, "data.extra"),
    ("mastery", {"extra": {"deep": {"deeper": 1}}}, "data.extra"),
    ("mastery", {"extra": "x" * 1001}, "data.extra"),
])
def test_values_out_of_range_name_the_field(analytics_type: str, data: dict[str, object], field: str) -> None:
    errors = bounds.data_errors(analytics_type, data)
    assert len(errors) == 1 and errors[0].startswith(field + " must be"), errors


def test_every_type_documents_its_headline_first() -> None:
    for t in ANALYTICS_TYPES:
        assert next(iter(bounds.FIELDS[t])) == HEADLINE_METRIC[t]
        low, high = bounds.HEADLINE_RANGE[t]
        assert bounds.headline_in_range(t, low) and bounds.headline_in_range(t, high)


def test_the_write_model_refuses_an_out_of_range_item_naming_item_and_field() -> None:
    items = [{"analyticsType": "mastery", "data": {"mastery": 0.5}},
             {"analyticsType": "engagement", "data": {"engagement": 7}}]
    with pytest.raises(pydantic.ValidationError) as caught:
        AnalyticsBatch.model_validate({"items": items})
    assert "items[1]: data.engagement must be a number in 0..1" in str(caught.value)


# Values at and around every bound, of every JSON kind (bool is not a number here).
_PROBES: list[object] = [
    None, True, False, 0, 1, -1, 7, 30, 31, 200, 201, 1000, 1001, 1_000_000, 1_000_001, 10**12, 10**12 + 1,
    -(10**12), -(10**12) - 1, 10**400, 0.0, -0.0, 0.5, 1.0, 1.0000001, -0.01, 3.0, 3.5, 999.99, 1000.0, 1000.5,
    43200.0, 43200.5, 1e12, 1e12 * 1.0000001, -1e12, 1e200, math.inf, -math.inf, math.nan, "x", "", {},
    {"a": 1}, [1],
]


@pytest.mark.parametrize("analytics_type", ANALYTICS_TYPES)
def test_the_quick_checks_agree_with_the_full_ones(analytics_type: str) -> None:
    """data_errors takes plain numbers without a call; every value must get the verdict of the
    range's own holds() (documented fields) or of the extra-field rule (any other field)."""
    for value in _PROBES:
        for key, bound in bounds.FIELDS[analytics_type].items():
            refused = bool(bounds.data_errors(analytics_type, {key: value}))
            assert refused is not bound.holds(value), (key, value)
        refused = bool(bounds.data_errors(analytics_type, {"extra": value}))
        assert refused is not bounds._extra_ok(value, nested=True), ("extra", value)


def test_a_validated_batch_passes_validation_again_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks are a field validator: an AnalyticsBatch validated from the body text goes through
    Powertools' validation (a TypeAdapter of the model) untouched, without a second check."""
    import ms8.schemas.analytics as schema

    batch = AnalyticsBatch.model_validate_json('{"items": [{"analyticsType": "mastery", "data": {"mastery": 0.5}}]}')
    calls: list[str] = []

    def counting(analytics_type: str, data: dict[str, object]) -> list[str]:
        calls.append(analytics_type)
        return bounds.data_errors(analytics_type, data)

    monkeypatch.setattr(schema, "data_errors", counting)
    assert pydantic.TypeAdapter(AnalyticsBatch).validate_python(batch) is batch
    assert calls == []
    AnalyticsBatch.model_validate({"items": [{"analyticsType": "mastery", "data": {"mastery": 0.5}}]})
    assert calls == ["mastery"]
