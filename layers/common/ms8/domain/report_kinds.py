"""Which report a caller gets, by active role (pure).

- learner: `personal` only (their own learning);
- trainer: `cohort` by default (the learners assigned to them; `trainerId`, if given, must be
  their own), or `personal` (their own learning);
- org admin: `organization` by default, `cohort` of any trainer of the organization (with
  `trainerId`), or `personal`.

Learner-level rows (names, metrics, at-risk reasons) are in cohort and organization reports only,
which only trainers (of their own assigned learners) and org admins (of every learner) get: the
same people who may list those learners with GET /v1/learners.
"""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from ms8.errors import Forbidden, Unprocessable
from ms8.renderers.document import ReportKind

DEFAULT_KIND: dict[str, ReportKind] = {"learner": "personal", "trainer": "cohort", "org_admin": "organization"}
ALLOWED_KINDS: dict[str, tuple[ReportKind, ...]] = {
    "learner": ("personal",),
    "trainer": ("cohort", "personal"),
    "org_admin": ("organization", "cohort", "personal"),
}


class KindChoice(NamedTuple):
    kind: ReportKind
    trainer_id: UUID | None  # the cohort's trainer, for kind cohort


def choose_kind(role: str, caller_id: UUID, kind: ReportKind | None, trainer_id: UUID | None) -> KindChoice:
    """The report kind and cohort for this caller, or the 4xx that explains why not."""
    chosen = kind or ("cohort" if role == "org_admin" and trainer_id is not None else DEFAULT_KIND[role])
    if chosen not in ALLOWED_KINDS[role]:
        raise Forbidden(f"a {role} gets {' or '.join(ALLOWED_KINDS[role])} reports, not {chosen}",
                        code="REPORT_KIND_NOT_ALLOWED")
    if chosen != "cohort":
        if trainer_id is not None:
            raise Unprocessable("trainerId names a cohort: it goes with kind cohort only")
        return KindChoice(chosen, None)
    if role == "trainer":
        if trainer_id is not None and trainer_id != caller_id:
            raise Forbidden("a trainer gets the report of their own cohort only", code="REPORT_KIND_NOT_ALLOWED")
        return KindChoice("cohort", caller_id)
    if trainer_id is None:
        raise Unprocessable("a cohort report of an org admin needs trainerId (the cohort's trainer)")
    return KindChoice("cohort", trainer_id)
