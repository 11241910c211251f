"""PUT /v1/skill-targets/{skill}: an org admin sets the organization's target level for a skill,
what skill_gap measures against."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.directory import SKILL_PATTERN, SkillTarget, SkillTargetUpdate
from ms8.services import directory

app = make_app()


@app.put("/v1/skill-targets/<skill>", summary="Set a skill's target level (org admin)", tags=["directory"])
def put_skill_target(
    skill: Annotated[str, Path(pattern=SKILL_PATTERN, description="A slug: letters, digits, _ . : + -")],
    body: SkillTargetUpdate,
) -> SkillTarget:
    with user_tx(app, roles=("org_admin",)) as (conn, caller):
        return directory.set_skill_target(conn, caller, skill, body.target_level)


lambda_handler = handler(app)
