"""The analytics vocabulary, defined once: roles, analytics types and their headline metrics,
the verbs that count as completions and assessments, the k of peer comparison, rollup
granularities and the learner-level metrics whose distributions rollups report.

Models (Literal types), SQL (passed as parameters: `verb = ANY(%(completion_verbs)s)`), the
metrics, rollups, risk rule, reports and the demo take them from here.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["learner", "trainer", "org_admin"]
ROLES: tuple[Role, ...] = get_args(Role)
LEARNER: Role = "learner"
TRAINER: Role = "trainer"

AnalyticsType = Literal["learning_velocity", "engagement", "mastery", "skill_gap"]
ANALYTICS_TYPES: tuple[AnalyticsType, ...] = get_args(AnalyticsType)
# The number each type's snapshot leads with (peer comparison, reports, the learner list).
HEADLINE_METRIC: dict[str, str] = {
    "learning_velocity": "velocity",
    "engagement": "engagement",
    "mastery": "mastery",
    "skill_gap": "gap",
}

# The last four arrive from xAPI statements (docs/XAPI.md has the mapping).
Verb = Literal["completed", "passed", "failed", "attempted", "progressed", "session",
               "answered", "scored", "experienced", "activity"]
VERBS: tuple[Verb, ...] = get_args(Verb)
# A completion: an object finished (velocity, rollup completions).
COMPLETION_VERBS: tuple[Verb, ...] = ("completed",)
# An assessment: an attempt at something scored (mastery, rollup assessments and mean score).
# answered and scored come from xAPI statements.
ASSESSMENT_VERBS: tuple[Verb, ...] = ("passed", "failed", "attempted", "answered", "scored")
PASSED_VERB: Verb = "passed"
SESSION_VERB: Verb = "session"

# Peer comparison (and small-cell suppression) shows a group only from this many people.
PEER_K = 10

Granularity = Literal["daily", "weekly", "monthly"]
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)

RollupScope = Literal["organization", "cohort"]
ROLLUP_SCOPES: tuple[RollupScope, ...] = get_args(RollupScope)

# Learner-level metrics whose distribution across learners (p25, median, p75) a rollup carries,
# as they are named on the wire.
DistributionMetric = Literal["completions", "activeDays", "meanScore", "minutes"]
DISTRIBUTION_METRICS: tuple[DistributionMetric, ...] = get_args(DistributionMetric)

RiskCode = Literal["inactive", "velocity_drop", "below_target"]
RISK_CODES: tuple[RiskCode, ...] = get_args(RiskCode)
