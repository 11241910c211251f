// Sign-in. Locally: pick a demo user (the local gateway mints their token). Deployed: the user
// pool's sign-in page (authorization code with PKCE).

import { demoToken, demoUsers, signIn, startPkce, type DemoUser } from "../auth";
import type { AppConfig } from "../config";
import { errorText, h, mount, notice } from "../dom";

const ROLE_LABEL: Record<string, string> = { learner: "learner", trainer: "trainer", org_admin: "org admin" };

export function signInPage(cfg: AppConfig, done: () => void, problem?: string): HTMLElement {
  const body = h("div");
  const page = h("div", { class: "signin", "data-page": "signin" }, h("h1", {}, "Sign in"), problem ? notice(problem, "error") : null, body);
  if (cfg.auth) {
    const auth = cfg.auth;
    mount(body, h("p", {}, "Sign in with your organization's account."), h("button", { type: "button", class: "primary", onclick: () => void startPkce(auth).catch((e) => mount(body, notice(errorText(e), "error"))) }, "Sign in"));
    return page;
  }
  mount(body, notice("Loading the demo users…"));
  demoUsers(cfg.apiUrl)
    .then((users) => {
      const byOrg = new Map<string, DemoUser[]>();
      for (const u of users) byOrg.set(u.organization, [...(byOrg.get(u.organization) ?? []), u]);
      const pick = async (u: DemoUser) => {
        try {
          signIn(await demoToken(cfg.apiUrl, u.userId), u.roles.length > 1 ? u.roles[0] : null);
          done();
        } catch (e) {
          mount(body, notice(errorText(e), "error"));
        }
      };
      mount(
        body,
        h("p", { class: "notice" }, "Local demo: choose who you are. (This list exists only on the local stack; deployed, you sign in with your account.)"),
        [...byOrg.entries()].map(([org, list]) =>
          h(
            "section",
            { class: "card", "aria-label": org },
            h("h2", {}, org),
            // Admins and trainers first: there are few of them and many learners.
            ["org_admin", "trainer", "learner"].flatMap((role) => {
              const people = list.filter((u) => u.roles[0] === role);
              return people.length === 0
                ? []
                : [
                    h("h3", {}, `${ROLE_LABEL[role][0].toUpperCase()}${ROLE_LABEL[role].slice(1)}s`),
                    h(
                      "ul",
                      { class: "users" },
                      people.map((u) =>
                        h(
                          "li",
                          {},
                          h("button", { type: "button", class: "user", "data-login": u.login, onclick: () => void pick(u) }, h("span", { class: "user-name" }, u.name), h("span", { class: "small muted" }, `${u.handle} · ${u.roles.map((r) => ROLE_LABEL[r] ?? r).join(", ")}`)),
                        ),
                      ),
                    ),
                  ];
            }),
          ),
        ),
      );
    })
    .catch((e) => mount(body, notice(errorText(e), "error")));
  return page;
}
