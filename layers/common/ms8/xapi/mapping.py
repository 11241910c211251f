"""From an xAPI statement to a learning event; docs/XAPI.md has the mapping as a table. Pure.

Verbs: the ADL verbs completed, passed, failed, answered, scored, attempted, progressed and
experienced keep their name, any other verb is `activity`; `result.completion: true` makes a
progressed, experienced or other statement a completion. The score is `score.scaled` (a negative
one counts as 0), else `raw` placed within `min..max`; the duration is ISO 8601, in seconds, at
most a day; skills are the names of the `category` context activities. Only a statement whose
object is an Activity maps to an event (not a voiding statement, an Agent, a StatementRef, a
SubStatement); every statement is stored all the same.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

MAX_DURATION_S = 24 * 3600
_NO_SEPARATORS = str.maketrans("\x1e\x1f", "  ")  # keys travel joined by these (repositories.xapi)
MAX_SKILLS = 20
MAX_OBJECT_ID = 200

# ADL verbs, and the TinCan registry's (Moodle says a course is completed with id.tincanapi.com/verb/completed).
VERB_PREFIXES = ("http://adlnet.gov/expapi/verbs/", "https://w3id.org/xapi/adl/verbs/", "http://id.tincanapi.com/verb/")
MAPPED_VERBS = frozenset({"completed", "passed", "failed", "answered", "scored", "attempted", "progressed",
                          "experienced"})
OTHER_VERB = "activity"
# Verbs a `result.completion: true` turns into a completion (an answered question does not complete anything).
PROMOTED_BY_COMPLETION = frozenset({"progressed", "experienced", OTHER_VERB})
SOURCE_CATEGORY = "http://id.tincanapi.com/activitytype/source"  # Moodle marks its own platform so

_DURATION = re.compile(
    r"^P(?:(?P<Y>[\d.,]+)Y)?(?:(?P<Mo>[\d.,]+)M)?(?:(?P<W>[\d.,]+)W)?(?:(?P<D>[\d.,]+)D)?"
    r"(?:T(?:(?P<H>[\d.,]+)H)?(?:(?P<Mi>[\d.,]+)M)?(?:(?P<S>[\d.,]+)S)?)?$"
)
_SECONDS = {"Y": 365 * 86400, "Mo": 30 * 86400, "W": 7 * 86400, "D": 86400, "H": 3600, "Mi": 60, "S": 1}


class Mapped(NamedTuple):
    """The learning event a statement counts as (its owner is resolved separately)."""

    verb: str
    object_id: str
    object_type: str
    skills: tuple[str, ...]
    score: float | None
    success: bool | None
    duration_seconds: int | None


@lru_cache(maxsize=4096)
def verb_of(verb_id: str) -> str:
    for prefix in VERB_PREFIXES:
        if verb_id.startswith(prefix):
            name = verb_id[len(prefix):]
            return name if name in MAPPED_VERBS else OTHER_VERB
    return OTHER_VERB


def duration_seconds(text: str | None) -> int | None:
    """An ISO 8601 duration in whole seconds, capped at a day (months as 30 days, years as 365)."""
    return _duration(text) if text else None


@lru_cache(maxsize=4096)
def _duration(text: str) -> int | None:
    found = _DURATION.match(text)
    if found is None:
        return None
    total = sum(float(v.replace(",", ".")) * _SECONDS[k] for k, v in found.groupdict().items() if v)
    return min(round(total), MAX_DURATION_S)


def scaled_score(score: dict[str, Any] | None) -> float | None:
    """score.scaled in 0..1 (a negative scaled score counts as 0), else raw placed within min..max
    (min 0 when only max is given); None when neither says where the score lies."""
    if not score:
        return None
    if "scaled" in score:
        return max(0.0, min(1.0, float(score["scaled"])))
    raw, high = score.get("raw"), score.get("max")
    if raw is None or high is None:
        return None
    low = float(score.get("min", 0))
    if float(high) <= low:
        return None
    return max(0.0, min(1.0, (float(raw) - low) / (float(high) - low)))


def _name(activity: dict[str, Any]) -> str:
    names = (activity.get("definition") or {}).get("name") or {}
    for tag in ("en", "en-US", "en-GB"):
        if names.get(tag):
            return str(names[tag])
    return str(next(iter(names.values()), "") or activity["id"])


def skills_of(context: dict[str, Any] | None) -> tuple[str, ...]:
    """The names of the statement's category context activities (the skills it exercises)."""
    found: dict[str, None] = {}
    category = ((context or {}).get("contextActivities") or {}).get("category") or []
    for activity in category if isinstance(category, list) else [category]:
        if (activity.get("definition") or {}).get("type") == SOURCE_CATEGORY:
            continue
        skill = _skill(_name(activity))
        if skill:
            found[skill] = None
    return tuple(found)[:MAX_SKILLS]


@lru_cache(maxsize=4096)
def _skill(name: str) -> str:
    """A skill as learning events hold it: no control characters, at most 100 characters."""
    return "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()[:100]


def object_id_of(activity_id: str) -> str:
    if len(activity_id) <= MAX_OBJECT_ID:
        return activity_id
    digest = hashlib.sha256(activity_id.encode()).hexdigest()[:40]
    return f"{activity_id[:MAX_OBJECT_ID - 41]}#{digest}"


def object_type_of(activity: dict[str, Any]) -> str:
    kind = (activity.get("definition") or {}).get("type")
    return _type_name(kind) if kind else "activity"


@lru_cache(maxsize=4096)
def _type_name(kind: str) -> str:
    """The last segment of an activity type IRI (`.../activities/assessment` -> assessment)."""
    name = kind.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return (name or "activity")[:50]


def map_statement(st: dict[str, Any]) -> Mapped | None:
    """The learning event of a (valid) statement, or None when it counts as none."""
    obj = st["object"]
    if obj.get("objectType", "Activity") != "Activity" or st["verb"]["id"].endswith("/voided"):
        return None
    result = st.get("result") or {}
    verb = verb_of(st["verb"]["id"])
    if result.get("completion") is True and verb in PROMOTED_BY_COMPLETION:
        verb = "completed"
    return Mapped(
        verb, object_id_of(obj["id"]), object_type_of(obj), skills_of(st.get("context")),
        scaled_score(result.get("score")), result.get("success"), duration_seconds(result.get("duration")),
    )


def actor_keys(actor: dict[str, Any], home_page: str | None) -> tuple[str, ...]:
    """How an actor may be one of the organization's users: `id:<uuid>` or `email:<address>` for
    an account of the platform's homePage (its name a user id or an e-mail), `email:` for mbox,
    `sha1:` for mbox_sha1sum. An actor of another homePage, an openid, a Group: none."""
    if actor.get("objectType") == "Group":
        return ()
    if "mbox" in actor:
        return ("email:" + actor["mbox"][len("mailto:"):].lower(),)
    if "mbox_sha1sum" in actor:
        return ("sha1:" + actor["mbox_sha1sum"].lower(),)
    account = actor.get("account")
    if account and home_page is not None and account["homePage"].rstrip("/") == home_page.rstrip("/"):
        name = account["name"].strip().translate(_NO_SEPARATORS)
        if "@" in name:
            return ("email:" + name.lower(),)
        return ("id:" + name.lower(),)
    return ()


def user_keys(user_id: str, email: str) -> tuple[str, ...]:
    """The actor keys a user answers to (see actor_keys)."""
    email = email.lower()
    sha1 = hashlib.sha1(f"mailto:{email}".encode()).hexdigest()  # noqa: S324 - the xAPI identifier, not security
    return (f"id:{user_id.lower()}", f"email:{email}", f"sha1:{sha1}")


def event_json(mapped: Mapped, occurred_at: datetime) -> dict[str, Any]:
    """The mapped event as kept beside the statement, until its actor is a user."""
    return {**mapped._asdict(), "skills": list(mapped.skills), "occurred_at": occurred_at.isoformat()}
