"""Statements as the LRS stores and returns them: the properties the LRS sets, the filter tokens,
the content hash of statements sent without an id, and the `ids` / `canonical` formats. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ms8.xapi.validate import IFIS, TIMESTAMP_RE, VOIDED, Invalid

VERSION = "1.0.0"  # what a statement sent without `version` is stored with (the specification's rule)


def format_instant(at: datetime) -> str:
    """UTC, milliseconds, `Z`: what `stored` and `X-Experience-API-Consistent-Through` carry."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.astimezone(UTC).microsecond // 1000:03d}Z"


def to_millis(at: datetime) -> datetime:
    """`at` truncated to the millisecond: stored times compare exactly with their text form."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 timestamp (already validated) as an aware datetime; no offset means UTC."""
    try:  # the C parser takes the usual forms; the rest (a comma, more than 6 decimals, ...) below
        at = datetime.fromisoformat(text)
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    except ValueError:
        pass
    found = TIMESTAMP_RE.match(text)
    if found is None:
        raise Invalid("", f"{text!r} is not an ISO 8601 date-time")
    y, mo, d, h, mi, s = (int(g) for g in found.groups()[:6])
    fraction, offset = found.group(7), found.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz: timezone = UTC
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        tz = timezone(timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    try:
        return datetime(y, mo, d, h, mi, min(s, 59), micro, tzinfo=tz)
    except ValueError:
        raise Invalid("", f"{text!r} is not a valid date-time") from None


_NO_SEPARATORS = str.maketrans("\x1e\x1f", "  ")  # the row and field separators of the insert


def agent_key(agent: dict[str, Any]) -> str | None:
    """The inverse functional identifier of an Agent or identified Group, as one string."""
    for key in IFIS:
        value = agent.get(key)
        if value is None:
            continue
        if key == "account":
            return f"account:{value['homePage']} {value['name'].translate(_NO_SEPARATORS)}"
        if key == "mbox_sha1sum":
            return f"mbox_sha1sum:{value.lower()}"
        return f"{key}:{value}"
    return None


def _agents(value: dict[str, Any] | None, out: list[str]) -> None:
    """Add the keys of an Agent or Group and of a Group's members."""
    if not value:
        return
    key = agent_key(value)
    if key:
        out.append(key)
    _members(value, out)


def agent_keys(value: dict[str, Any] | None) -> list[str]:
    """The keys of an Agent or Group and of a Group's members: what `A:` matches for it."""
    out: list[str] = []
    _agents(value, out)
    return out


def _members(value: dict[str, Any], out: list[str]) -> None:
    for member in value.get("member") or ():
        key = agent_key(member)
        if key:
            out.append(key)


def _context_activities(context: dict[str, Any] | None, prefix: str, out: set[str]) -> None:
    for items in ((context or {}).get("contextActivities") or {}).values():
        if type(items) is list:
            for item in items:
                out.add(prefix + item["id"])
        else:
            out.add(prefix + items["id"])


def tokens(st: dict[str, Any], authority_keys: Sequence[str] | None = None) -> list[str]:
    """What the GET filters match: `a:` actor or object agent, `A:` any related agent, `v:` verb,
    `o:` the object activity, `O:` any related activity, `r:` registration (one GIN index).
    `authority_keys`: agent_keys of the statement's authority, when the caller knows them (the
    same for a whole batch)."""
    found: set[str] = set()
    related: list[str] = []
    obj = st["object"]
    kind = obj.get("objectType", "Activity")
    own = agent_key(st["actor"])  # once: it is both the actor (a:) and a related agent (A:)
    if own:
        found.add("a:" + own)
        related.append(own)
    _members(st["actor"], related)
    found.add("v:" + st["verb"]["id"])
    if kind == "Activity":
        found.add("o:" + obj["id"])
        found.add("O:" + obj["id"])
    elif kind in ("Agent", "Group"):
        key = agent_key(obj)
        if key:
            found.add("a:" + key)
        _agents(obj, related)
    elif kind == "SubStatement":
        _agents(obj["actor"], related)
        sub_obj = obj["object"]
        if sub_obj.get("objectType", "Activity") == "Activity":
            found.add("O:" + sub_obj["id"])
        elif sub_obj.get("objectType") in ("Agent", "Group"):
            _agents(sub_obj, related)
        sub_ctx = obj.get("context") or {}
        _context_activities(sub_ctx, "O:", found)
        _agents(sub_ctx.get("instructor"), related)
        _agents(sub_ctx.get("team"), related)
    ctx = st.get("context")
    if ctx:
        _agents(ctx.get("instructor"), related)
        _agents(ctx.get("team"), related)
        _context_activities(ctx, "O:", found)
        if "registration" in ctx:
            found.add("r:" + ctx["registration"].lower())
    if authority_keys is not None:
        related.extend(authority_keys)
    else:
        _agents(st.get("authority"), related)
    for key in related:
        found.add("A:" + key)
    return list(found)


def content_hash(st: dict[str, Any]) -> bytes:
    """What makes two statements sent without an id the same one: actor, verb, object, timestamp
    and result (canonical JSON, SHA-256)."""
    basis = [st["actor"], st["verb"]["id"], st["object"], st.get("timestamp"), st.get("result")]
    return hashlib.sha256(json.dumps(basis, sort_keys=True, separators=(",", ":")).encode()).digest()


def _arrays(context: dict[str, Any]) -> dict[str, Any]:
    """Context activities always as arrays (a single one may be sent as an object)."""
    activities = context.get("contextActivities")
    if not activities:
        return context
    for v in activities.values():
        if type(v) is not list:
            break
    else:
        return context
    return {**context, "contextActivities": {k: v if isinstance(v, list) else [v] for k, v in activities.items()}}


def complete(st: dict[str, Any], statement_id: str, stored: str, authority: dict[str, Any]) -> dict[str, Any]:
    """The statement as stored: the LRS sets id, stored, authority, and timestamp and version when
    absent, and returns context activities as arrays; everything else stays as sent."""
    done = dict(st)
    if "context" in done:
        done["context"] = _arrays(done["context"])
    obj = done["object"]
    if obj.get("objectType") == "SubStatement" and "context" in obj:
        done["object"] = {**obj, "context": _arrays(obj["context"])}
    done["id"] = statement_id
    done["stored"] = stored
    done["authority"] = authority
    done.setdefault("timestamp", stored)
    done.setdefault("version", VERSION)
    return done


LRS_SET = frozenset({"id", "stored", "authority", "version"})


def same(sent: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether a statement sent again under a stored statement's id is that statement: equal but
    for what the LRS sets (id, stored, authority, version; the timestamp when none was sent) and
    context activities sent as single objects."""
    def comparable(st: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in st.items() if k not in LRS_SET}
        if "context" in out:
            out["context"] = _arrays(out["context"])
        obj = out["object"]
        if obj.get("objectType") == "SubStatement" and "context" in obj:
            out["object"] = {**obj, "context": _arrays(obj["context"])}
        if "timestamp" not in sent:
            out.pop("timestamp", None)
        return out

    return comparable(sent) == comparable(stored)


def is_voiding(st: dict[str, Any]) -> bool:
    return bool(st["verb"]["id"] == VOIDED)


# --- formats ---------------------------------------------------------------------------------

def _ids_agent(agent: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "objectType" in agent:
        out["objectType"] = agent["objectType"]
    for key in IFIS:
        if key in agent:
            out[key] = agent[key]
            break
    else:
        if "member" in agent:
            out["member"] = [_ids_agent(m) for m in agent["member"]]
    return out


def _ids_object(obj: dict[str, Any]) -> dict[str, Any]:
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return {"id": obj["id"]}
    if kind in ("Agent", "Group"):
        return _ids_agent(obj)
    if kind == "SubStatement":
        return _ids(obj)
    return obj


def _ids(st: dict[str, Any]) -> dict[str, Any]:
    out = dict(st)
    out["actor"] = _ids_agent(st["actor"])
    out["verb"] = {"id": st["verb"]["id"]}
    out["object"] = _ids_object(st["object"])
    if "authority" in st:
        out["authority"] = _ids_agent(st["authority"])
    if "context" in st:
        ctx = dict(st["context"])
        for key in ("instructor", "team"):
            if key in ctx:
                ctx[key] = _ids_agent(ctx[key])
        if "contextActivities" in ctx:
            ctx["contextActivities"] = {
                k: [{"id": a["id"]} for a in (v if isinstance(v, list) else [v])]
                for k, v in ctx["contextActivities"].items()
            }
        out["context"] = ctx
    return out


def _pick(lang_map: dict[str, str], wanted: list[str]) -> dict[str, str]:
    """The one entry of a language map the client prefers (Accept-Language), else the first."""
    lowered = {k.lower(): k for k in lang_map}
    for tag in wanted:
        if tag in lowered:
            return {lowered[tag]: lang_map[lowered[tag]]}
        for key, original in lowered.items():
            if key.split("-")[0] == tag.split("-")[0]:
                return {original: lang_map[original]}
    first = next(iter(lang_map), None)
    return {first: lang_map[first]} if first is not None else {}


_LANG_MAPS = frozenset({"display", "name", "description"})


def _canonical(value: Any, wanted: list[str], key: str = "") -> Any:
    if isinstance(value, dict):
        if key in _LANG_MAPS and all(isinstance(v, str) for v in value.values()):
            return _pick(value, wanted)
        return {k: v if k == "extensions" else _canonical(v, wanted, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v, wanted, key) for v in value]
    return value


def accept_languages(header: str | None) -> list[str]:
    """Accept-Language as tags in order of preference."""
    tags = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            tags.append((-q, i, tag.lower()))
    return [t for _, _, t in sorted(tags)]


def render(st: dict[str, Any], fmt: str, languages: list[str]) -> dict[str, Any]:
    """A stored statement in the requested format (exact: as stored)."""
    if fmt == "ids":
        return _ids(st)
    if fmt == "canonical":
        return dict(_canonical(st, languages))
    return st
