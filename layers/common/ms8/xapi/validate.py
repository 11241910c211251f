"""The xAPI 1.0.3 statement rules (Data section of the specification), as pure functions.

Each object type is checked by one function: allowed and required properties, then each value.
A problem raises Invalid naming where it is (`actor.account.homePage`) and what is wrong; the
LRS answers it with 400. Written by hand rather than with a JSON-schema library: the rules that
matter (exactly one inverse functional identifier, interaction components per type, SubStatement
limits, raw score within min..max) are not schema rules, and this is on the hot path of every
batch (bench/bench_xapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z")
IRI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")
MBOX_RE = re.compile(r"^mailto:[^@\s]+@[^@\s]+\Z")
SHA1_RE = re.compile(r"^[0-9a-fA-F]{40}\Z")
LANG_RE = re.compile(r"^(?:[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*|[xXiI](?:-[A-Za-z0-9]{1,8})+)\Z")
VERSION_RE = re.compile(r"^1\.0(?:\.\d+)?\Z")
# ISO 8601 date-time: a full date and time; an offset may be omitted (UTC is assumed), but "-00:00"
# (RFC 3339's "unknown offset") is refused, as the specification says.
TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_N = r"(?:\d+(?:[.,]\d+)?)"
# Weeks stand alone (PnW); otherwise years to seconds, with a T before the time part.
DURATION_RE = re.compile(
    rf"^P(?:{_N}W|(?!$)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)$"
)

INTERACTION_TYPES = {
    "true-false": (), "choice": ("choices",), "fill-in": (), "long-fill-in": (),
    "matching": ("source", "target"), "performance": ("steps",), "sequencing": ("choices",),
    "likert": ("scale",), "numeric": (), "other": (),
}
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")

STATEMENT_KEYS = frozenset({"id", "actor", "verb", "object", "result", "context", "timestamp", "stored",
                            "authority", "version", "attachments"})
SUB_KEYS = frozenset({"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"})
AGENT_KEYS = frozenset({"objectType", "name", *IFIS})
GROUP_KEYS = AGENT_KEYS | {"member"}
ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
DEFINITION_KEYS = frozenset({"name", "description", "type", "moreInfo", "extensions", "interactionType",
                             "correctResponsesPattern", *COMPONENT_LISTS})
RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
CONTEXT_KEYS = frozenset({"registration", "instructor", "team", "contextActivities", "revision", "platform",
                          "language", "statement", "extensions"})
CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})


class Invalid(ValueError):
    """A statement (or a query parameter) that breaks a rule of the specification."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


def _obj(value: Any, where: str, allowed: frozenset[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    # Set operations in C: this runs for every object of every statement.
    if type(value) is not dict:
        raise Invalid(where, "must be a JSON object")
    if not allowed.issuperset(value):
        extra = sorted(set(value) - allowed)
        raise Invalid(where, f"unknown property {extra[0]!r}")
    if None in value.values():
        key = next(k for k, v in value.items() if v is None)
        raise Invalid(f"{where}.{key}", "must not be null")
    for key in required:
        if key not in value:
            raise Invalid(where, f"{key!r} is required")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Invalid(where, "must be a string")
    return value


def _bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(where, "must be true or false")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(where, "must be a number")
    return float(value)


# The same IRIs and language tags come back in statement after statement (verbs, activities,
# extension keys): each distinct string is matched once per process (bounded).
_KNOWN_IRIS: set[str] = set()
_KNOWN_TAGS: set[str] = set()
_KNOWN_MAX = 50_000


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_MAX:
        known.clear()
    known.add(value)


def iri(value: Any, where: str) -> str:
    if value in _KNOWN_IRIS:
        return str(value)
    if not isinstance(value, str) or not IRI_RE.match(value):
        raise Invalid(where, "must be an absolute IRI (with a scheme)")
    _remember(_KNOWN_IRIS, value)
    return value


def uuid(value: Any, where: str) -> str:
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise Invalid(where, "must be a UUID")
    return value


def timestamp(value: Any, where: str) -> str:
    found = TIMESTAMP_RE.match(value) if isinstance(value, str) else None
    if found is None:
        raise Invalid(where, "must be an ISO 8601 date-time")
    month, day, hour, minute, second, offset = found.group(2, 3, 4, 5, 6, 8)
    # Two digits each: compared as text they order as numbers (no int() per field).
    if not ("01" <= month <= "12" and "01" <= day <= "31" and hour <= "23" and minute <= "59" and second <= "60"):
        raise Invalid(where, "is not a valid date-time")
    if offset and offset[0] == "-" and not offset[1:].replace(":", "").strip("0"):
        raise Invalid(where, "the offset -00:00 is not allowed")
    return str(value)


def duration(value: Any, where: str) -> str:
    if not isinstance(value, str) or not DURATION_RE.match(value):
        raise Invalid(where, "must be an ISO 8601 duration")
    return value


def language_map(value: Any, where: str) -> None:
    if type(value) is not dict:
        raise Invalid(where, "must be a language map (an object)")
    for tag, text in value.items():
        if tag not in _KNOWN_TAGS:
            if not LANG_RE.match(tag):
                raise Invalid(where, f"{tag!r} is not a language tag")
            _remember(_KNOWN_TAGS, tag)
        if type(text) is not str:
            raise Invalid(f"{where}.{tag}", "must be a string")


def language(value: Any, where: str) -> None:
    if not isinstance(value, str) or not LANG_RE.match(value):
        raise Invalid(where, "must be a language tag (RFC 5646)")


def extensions(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(where, "must be an object")
    for key in value:
        iri(key, f"{where} key")


def _ifis(value: dict[str, Any], where: str) -> int:
    count = 0
    for key in IFIS:
        if key not in value:
            continue
        count += 1
        item = value[key]
        if key == "mbox":
            if not isinstance(item, str) or not MBOX_RE.match(item):
                raise Invalid(f"{where}.mbox", "must be a mailto: IRI")
        elif key == "mbox_sha1sum":
            if not isinstance(item, str) or not SHA1_RE.match(item):
                raise Invalid(f"{where}.mbox_sha1sum", "must be a SHA-1 hex digest")
        elif key == "openid":
            iri(item, f"{where}.openid")
        else:
            account = _obj(item, f"{where}.account", frozenset({"homePage", "name"}), ("homePage", "name"))
            iri(account["homePage"], f"{where}.account.homePage")
            _str(account["name"], f"{where}.account.name")
    return count


_VALID: set[bytes] = set()


def _seen_valid(kind: bytes, value: Any) -> bytes | None:
    """A statement batch repeats the same verbs, actors and activities (a course, a quiz, the
    platform's category) many times: each distinct one (as its JSON, per kind: the same JSON can be
    a valid Agent and an invalid Activity) is checked once per process (bounded). Returns the key
    to remember once the value has passed, or None when already known."""
    try:
        key = kind + orjson.dumps(value)
    except TypeError:  # not JSON (only from Python callers): checked every time
        return b""
    return None if key in _VALID else key


def _passed(key: bytes) -> None:
    if not key:
        return
    if len(_VALID) >= _KNOWN_MAX:
        _VALID.clear()
    _VALID.add(key)


def _once(kind: bytes, value: Any, check: Callable[[Any, str], None], where: str) -> None:
    """`check(value, where)`, unless this very value (a JSON object) of this kind passed before."""
    key = _seen_valid(kind, value) if type(value) is dict else b""
    if key is None:
        return
    check(value, where)
    _passed(key)


def agent(value: Any, where: str) -> None:
    _once(b"agent:", value, _agent, where)


def _agent(value: Any, where: str) -> None:
    _obj(value, where, AGENT_KEYS)
    if value.get("objectType", "Agent") != "Agent":
        raise Invalid(f"{where}.objectType", "must be Agent")
    if "name" in value:
        _str(value["name"], f"{where}.name")
    if _ifis(value, where) != 1:
        raise Invalid(where, "an Agent has exactly one of mbox, mbox_sha1sum, openid, account")


def group(value: Any, where: str) -> None:
    _obj(value, where, GROUP_KEYS)
    if value.get("objectType") != "Group":
        raise Invalid(f"{where}.objectType", "must be Group")
    if "name" in value:
        _str(value["name"], f"{where}.name")
    identified = _ifis(value, where)
    if identified > 1:
        raise Invalid(where, "a Group has at most one of mbox, mbox_sha1sum, openid, account")
    members = value.get("member")
    if members is None:
        if not identified:
            raise Invalid(where, "an anonymous Group has a member list")
        return
    if not isinstance(members, list) or (not members and not identified):
        raise Invalid(f"{where}.member", "must be an array of Agents")
    for i, member in enumerate(members):
        agent(member, f"{where}.member[{i}]")


def actor(value: Any, where: str) -> None:
    """An Agent, or a Group (objectType Group)."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, where)
    else:
        agent(value, where)


def verb(value: Any, where: str) -> None:
    _once(b"verb:", value, _verb, where)


def _verb(value: Any, where: str) -> None:
    _obj(value, where, frozenset({"id", "display"}), ("id",))
    iri(value["id"], f"{where}.id")
    if "display" in value:
        language_map(value["display"], f"{where}.display")


def _components(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise Invalid(where, "must be an array of interaction components")
    seen = set()
    for i, item in enumerate(value):
        _obj(item, f"{where}[{i}]", frozenset({"id", "description"}), ("id",))
        cid = _str(item["id"], f"{where}[{i}].id")
        if cid in seen:
            raise Invalid(f"{where}[{i}].id", "repeats another component's id")
        seen.add(cid)
        if "description" in item:
            language_map(item["description"], f"{where}[{i}].description")


def definition(value: Any, where: str) -> None:
    _obj(value, where, DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in value:
            language_map(value[key], f"{where}.{key}")
    if "type" in value:
        iri(value["type"], f"{where}.type")
    if "moreInfo" in value:
        iri(value["moreInfo"], f"{where}.moreInfo")
    if "extensions" in value:
        extensions(value["extensions"], f"{where}.extensions")
    kind = value.get("interactionType")
    lists = [k for k in COMPONENT_LISTS if k in value]
    if kind is None:
        if lists or "correctResponsesPattern" in value:
            raise Invalid(where, "interaction properties need an interactionType")
        return
    if not isinstance(kind, str) or kind not in INTERACTION_TYPES:
        raise Invalid(f"{where}.interactionType", f"{kind!r} is not an interaction type")
    for key in lists:
        if key not in INTERACTION_TYPES[kind]:
            raise Invalid(f"{where}.{key}", f"is not used with interactionType {kind}")
        _components(value[key], f"{where}.{key}")
    if "correctResponsesPattern" in value:
        pattern = value["correctResponsesPattern"]
        if not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern):
            raise Invalid(f"{where}.correctResponsesPattern", "must be an array of strings")


def activity(value: Any, where: str) -> None:
    _once(b"activity:", value, _activity, where)


def _activity(value: Any, where: str) -> None:
    _obj(value, where, ACTIVITY_KEYS, ("id",))
    if value.get("objectType", "Activity") != "Activity":
        raise Invalid(f"{where}.objectType", "must be Activity")
    iri(value["id"], f"{where}.id")
    if "definition" in value:
        definition(value["definition"], f"{where}.definition")


def statement_ref(value: Any, where: str) -> None:
    _obj(value, where, frozenset({"objectType", "id"}), ("objectType", "id"))
    uuid(value["id"], f"{where}.id")


def object_(value: Any, where: str, *, sub: bool = False) -> str:
    """The statement's object; returns its objectType."""
    if not isinstance(value, dict):
        raise Invalid(where, "must be a JSON object")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, where)
    elif kind == "Agent":
        if "objectType" not in value:
            raise Invalid(where, "an Agent as object names its objectType")
        agent(value, where)
    elif kind == "Group":
        group(value, where)
    elif kind == "StatementRef":
        statement_ref(value, where)
    elif kind == "SubStatement" and not sub:
        substatement(value, where)
    else:
        raise Invalid(f"{where}.objectType", f"{kind!r} is not allowed here")
    return str(kind)


def score(value: Any, where: str) -> None:
    _obj(value, where, SCORE_KEYS)
    numbers = {k: _number(v, f"{where}.{k}") for k, v in value.items()}
    scaled = numbers.get("scaled")
    if scaled is not None and not -1 <= scaled <= 1:
        raise Invalid(f"{where}.scaled", "must lie between -1 and 1")
    low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
    if low is not None and high is not None and low >= high:
        raise Invalid(where, "min must be less than max")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise Invalid(f"{where}.raw", "must lie between min and max")


def result(value: Any, where: str) -> None:
    # Results repeat too (the same score, success and duration): each distinct one checked once.
    _once(b"result:", value, _result, where)


def _result(value: Any, where: str) -> None:
    _obj(value, where, RESULT_KEYS)
    if "score" in value:
        score(value["score"], f"{where}.score")
    for key in ("success", "completion"):
        if key in value:
            _bool(value[key], f"{where}.{key}")
    if "response" in value:
        _str(value["response"], f"{where}.response")
    if "duration" in value:
        duration(value["duration"], f"{where}.duration")
    if "extensions" in value:
        extensions(value["extensions"], f"{where}.extensions")


def context(value: Any, where: str, object_type: str) -> None:
    # A course's statements share their context (its activities, platform, language): each
    # distinct one is checked once, per object type (revision and platform depend on it).
    _once(b"context:" + object_type.encode() + b":", value,
          lambda v, w: _context(v, w, object_type), where)


def _context(value: Any, where: str, object_type: str) -> None:
    _obj(value, where, CONTEXT_KEYS)
    if "registration" in value:
        uuid(value["registration"], f"{where}.registration")
    if "instructor" in value:
        actor(value["instructor"], f"{where}.instructor")
    if "team" in value:
        group(value["team"], f"{where}.team")
    if "contextActivities" in value:
        activities = _obj(value["contextActivities"], f"{where}.contextActivities", CONTEXT_ACTIVITY_KEYS)
        for key, item in activities.items():
            items = item if isinstance(item, list) else [item]
            for i, one in enumerate(items):
                activity(one, f"{where}.contextActivities.{key}[{i}]")
    for key in ("revision", "platform"):
        if key in value:
            _str(value[key], f"{where}.{key}")
            if object_type != "Activity":
                raise Invalid(f"{where}.{key}", "is used only when the object is an Activity")
    if "language" in value:
        language(value["language"], f"{where}.language")
    if "statement" in value:
        statement_ref(value["statement"], f"{where}.statement")
        if value["statement"].get("objectType") != "StatementRef":
            raise Invalid(f"{where}.statement.objectType", "must be StatementRef")
    if "extensions" in value:
        extensions(value["extensions"], f"{where}.extensions")


def attachments(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise Invalid(where, "must be an array")
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        _obj(item, at, ATTACHMENT_KEYS, ("usageType", "display", "contentType", "length", "sha2"))
        iri(item["usageType"], f"{at}.usageType")
        language_map(item["display"], f"{at}.display")
        if "description" in item:
            language_map(item["description"], f"{at}.description")
        _str(item["contentType"], f"{at}.contentType")
        if isinstance(item["length"], bool) or not isinstance(item["length"], int) or item["length"] < 0:
            raise Invalid(f"{at}.length", "must be a non-negative integer")
        _str(item["sha2"], f"{at}.sha2")
        if "fileUrl" in item:
            iri(item["fileUrl"], f"{at}.fileUrl")


def _core(value: dict[str, Any], where: str) -> None:
    actor(value["actor"], f"{where}actor")
    verb(value["verb"], f"{where}verb")
    kind = object_(value["object"], f"{where}object", sub=bool(where))
    if "result" in value:
        result(value["result"], f"{where}result")
    if "context" in value:
        context(value["context"], f"{where}context", kind)
    if "timestamp" in value:
        timestamp(value["timestamp"], f"{where}timestamp")
    if "attachments" in value:
        attachments(value["attachments"], f"{where}attachments")


def substatement(value: Any, where: str) -> None:
    _obj(value, where, SUB_KEYS, ("objectType", "actor", "verb", "object"))
    _core(value, f"{where}.")


VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def statement(value: Any, where: str = "") -> None:
    """One statement as a client sends it (PUT or POST)."""
    _obj(value, where or "statement", STATEMENT_KEYS, ("actor", "verb", "object"))
    prefix = f"{where}." if where else ""
    if "id" in value:
        uuid(value["id"], f"{prefix}id")
    _core(value, prefix)
    if "stored" in value:
        timestamp(value["stored"], f"{prefix}stored")
    if "version" in value and not (isinstance(value["version"], str) and VERSION_RE.match(value["version"])):
        raise Invalid(f"{prefix}version", "must be a 1.0.x version")
    if "authority" in value:
        authority(value["authority"], f"{prefix}authority")
    if value["verb"]["id"] == VOIDED:
        target = value["object"]
        if target.get("objectType") != "StatementRef":
            raise Invalid(f"{prefix}object", "a voiding statement's object is a StatementRef")


def authority(value: Any, where: str) -> None:
    """An Agent, or a Group of exactly two Agents (an OAuth consumer and a user)."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, where)
        if any(k in value for k in IFIS) or len(value.get("member") or ()) != 2:
            raise Invalid(where, "an authority Group is anonymous with exactly two members (OAuth)")
    else:
        agent(value, where)
