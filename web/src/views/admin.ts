// The org admin's dashboard: "is learning happening here?" The organization's active share,
// velocity and mastery over time (suppressed cells shown as suppressed, never as zero), the
// cohort of each trainer, users and assignments (assign a learner to a trainer), skill targets.

import { ApiError, allUsers, call, get, query, type Cohort, type CohortList, type DirectoryUser, type LearnerList, type Me, type Rollup, type SkillTarget, ANALYTICS_TYPES } from "../api";
import { announce, card, errorText, h, mount, notice } from "../dom";
import { cohortTable, openLearner } from "./cohort";
import { fill, fmtPercent, latestTiles, reportButton, trendsPanel } from "./shared";

/** Skills the demo organization assesses; any other skill name can be typed. */
const KNOWN_SKILLS = ["sql", "python", "statistics", "communication"];

function cohortsTable(cohorts: Cohort[], show: (c: Cohort) => void): HTMLElement {
  if (cohorts.length === 0) return notice("No trainers yet.");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "cohorts" },
      h("caption", { class: "visually-hidden" }, "Cohorts by trainer"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Trainer"), h("th", { scope: "col", class: "num" }, "Learners"), h("th", { scope: "col", class: "num" }, "At risk"), h("th", { scope: "col", class: "num" }, "Active share (7 days)"))),
      h(
        "tbody",
        {},
        [...cohorts]
          .sort((a, b) => a.displayName.localeCompare(b.displayName))
          .map((c) =>
            h(
              "tr",
              { "data-trainer": c.trainerId },
              h("th", { scope: "row" }, h("button", { type: "button", class: "link", "data-cohort": c.trainerId, onclick: () => show(c) }, c.displayName)),
              h("td", { class: "num", "data-field": "learners" }, String(c.learners)),
              h("td", { class: "num", "data-field": "atRisk" }, String(c.atRisk)),
              h("td", { class: "num", "data-field": "activeShare" }, fmtPercent(c.activeShare)),
            ),
          ),
      ),
    ),
  );
}

function assignForm(users: DirectoryUser[], onAssigned: (trainerId: string) => Promise<void>): HTMLElement {
  const learners = users.filter((u) => u.roles.includes("learner")).sort((a, b) => a.name.localeCompare(b.name));
  const trainers = users.filter((u) => u.roles.includes("trainer")).sort((a, b) => a.name.localeCompare(b.name));
  if (learners.length === 0 || trainers.length === 0) {
    return notice(`Assignments need a learner and a trainer; this organization has ${learners.length} learners and ${trainers.length} trainers.`);
  }
  const learner = h("select", { id: "assign-learner", name: "learner", required: true }, learners.map((u) => h("option", { value: u.id }, `${u.name} (${u.email})`)));
  const trainer = h("select", { id: "assign-trainer", name: "trainer", required: true }, trainers.map((u) => h("option", { value: u.id }, u.name)));
  const status = h("p", { class: "small", "aria-live": "polite", id: "assign-status" });
  const act = async (method: "PUT" | "DELETE") => {
    mount(status, method === "PUT" ? "Assigning…" : "Removing…");
    try {
      await call(method, `/v1/trainers/${trainer.value}/learners/${learner.value}`);
      const l = learners.find((u) => u.id === learner.value)?.name;
      const t = trainers.find((u) => u.id === trainer.value)?.name;
      const text = method === "PUT" ? `${l} is now in ${t}'s cohort.` : `${l} is no longer in ${t}'s cohort.`;
      await onAssigned(trainer.value);
      mount(status, text);
      announce(text);
    } catch (error) {
      mount(status, notice(error instanceof ApiError && error.status === 404 ? "Nothing to remove: not assigned." : `Failed: ${errorText(error)}`, "error"));
    }
  };
  const form = h(
    "form",
    { class: "form", "data-form": "assign" },
    h("div", { class: "field" }, h("label", { for: learner.id }, "Learner"), learner),
    h("div", { class: "field" }, h("label", { for: trainer.id }, "Trainer"), trainer),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", "data-action": "assign" }, "Assign to trainer"), h("button", { type: "button", class: "secondary", "data-action": "unassign", onclick: () => void act("DELETE") }, "Remove from trainer")),
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void act("PUT");
  });
  return form;
}

function usersTable(users: DirectoryUser[]): HTMLElement {
  return h(
    "details",
    { class: "data" },
    h("summary", {}, `All ${users.length} users`),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Email"), h("th", { scope: "col" }, "Roles"))),
        h("tbody", {}, [...users].sort((a, b) => a.name.localeCompare(b.name)).map((u) => h("tr", {}, h("th", { scope: "row" }, u.name), h("td", {}, u.email), h("td", {}, u.roles.join(", "))))),
      ),
    ),
  );
}

function targetsForm(): HTMLElement {
  const skill = h("input", { id: "target-skill", name: "skill", required: true, list: "known-skills", autocomplete: "off", pattern: "[A-Za-z0-9_.:\\-]{1,64}" });
  const level = h("input", { id: "target-level", name: "level", type: "number", min: "0", max: "100", step: "1", required: true, value: "70", inputmode: "numeric" });
  const saved = h("ul", { class: "targets", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "form", "data-form": "targets" },
    h("datalist", { id: "known-skills" }, KNOWN_SKILLS.map((s) => h("option", { value: s }))),
    h("div", { class: "field" }, h("label", { for: skill.id }, "Skill"), skill),
    h("div", { class: "field" }, h("label", { for: level.id }, "Target level (%)"), level),
    h("button", { type: "submit", class: "primary" }, "Save target"),
    saved,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const t = await call<SkillTarget>("PUT", `/v1/skill-targets/${encodeURIComponent(skill.value.trim())}`, { targetLevel: Number(level.value) / 100 });
      saved.prepend(h("li", { "data-skill": t.skill }, `${t.skill}: target ${fmtPercent(t.targetLevel)} (saved ${t.updatedAt.slice(0, 16).replace("T", " ")} UTC)`));
      announce(`Target for ${t.skill} saved`);
    } catch (error) {
      saved.prepend(h("li", { class: "error", role: "alert" }, `Not saved: ${errorText(error)}`));
    }
  });
  return form;
}

export function adminDashboard(_me: Me): HTMLElement {
  const summary = h("div");
  const trends = h("div");
  const cohorts = h("div");
  const members = h("div", { id: "cohort-members" });
  const drill = h("section", { class: "card drill", id: "drilldown", "aria-labelledby": "drill-h", hidden: true });
  const assignments = h("div");
  const view = h(
    "div",
    { class: "dashboard", "data-dashboard": "org_admin" },
    h("h1", {}, "Your organization"),
    card("At a glance", "summary", summary),
    card("Active share, velocity and mastery", "trends", trends),
    card("Cohorts by trainer", "cohorts", cohorts, members),
    drill,
    h("div", { class: "two" }, card("Users and assignments", "assignments", assignments), card("Skill targets", "targets", h("p", { class: "small muted" }, "Skill gap measures each learner against these levels."), targetsForm())),
    card("Organization report", "report", h("p", {}, "The organization's metrics over the last 30 days."), reportButton("Download the organization report", { types: ANALYTICS_TYPES })),
  );
  const rollups = get<{ items: Rollup[] }>(`/v1/aggregates${query({ granularity: "weekly", scope: "organization" })}`).then((r) => r.items);
  void fill(summary, async () => latestTiles(await rollups));
  trends.append(trendsPanel([["organization", "The organization"]], rollups));

  const showCohort = (c: { trainerId: string; displayName: string }) =>
    fill(members, async () => {
      const rows = await get<LearnerList>(`/v1/learners${query({ trainerId: c.trainerId })}`);
      return [h("h3", { "data-cohort-of": c.trainerId }, `${c.displayName}'s learners`), cohortTable(rows.items, (r) => openLearner(drill, r), `${c.displayName}'s learners`)];
    });
  let known: Cohort[] = [];
  const loadCohorts = () =>
    fill(cohorts, async () => {
      const list = await get<CohortList>("/v1/cohorts");
      known = list.items;
      return [cohortsTable(known, (c) => void showCohort(c)), h("p", { class: "small muted", "data-field": "unassigned" }, `${list.unassignedLearners} learners are in no cohort.`)];
    });
  void loadCohorts();
  void fill(assignments, async () => {
    const users = await allUsers();
    return [
      assignForm(users, async (trainerId) => {
        await loadCohorts();
        const c = known.find((k) => k.trainerId === trainerId);
        if (c) await showCohort(c);
      }),
      usersTable(users),
    ];
  });
  return view;
}
