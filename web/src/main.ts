// The app: configuration, sign-in, then the dashboard of the active role.

import "./styles.css";
import { ApiError, configure, get, type Me, type Role } from "./api";
import { finishPkce, session, setRole, signOut } from "./auth";
import { loadConfig, type AppConfig } from "./config";
import { errorText, h, mount, notice } from "./dom";
import { adminDashboard } from "./views/admin";
import { learnerDashboard } from "./views/learner";
import { signInPage } from "./views/signin";
import { trainerDashboard } from "./views/trainer";

const ROLE_NAMES: Record<Role, string> = { learner: "Learner", trainer: "Trainer", org_admin: "Org admin" };
const DASHBOARDS: Record<Role, (me: Me) => HTMLElement> = { learner: learnerDashboard, trainer: trainerDashboard, org_admin: adminDashboard };

const main = document.getElementById("main")!;
const nav = document.getElementById("session")!;
let config: AppConfig;

function showSignIn(problem?: string): void {
  mount(nav);
  mount(main, signInPage(config, () => void start(), problem));
  document.title = "Sign in · MS8 Learning Analytics";
}

function sessionNav(me: Me): HTMLElement[] {
  const parts: HTMLElement[] = [h("span", { class: "who" }, me.name)];
  if (me.roles.length > 1) {
    const select = h("select", { id: "role", "aria-label": "Active role" }, me.roles.map((r) => h("option", { value: r, selected: r === me.activeRole }, ROLE_NAMES[r])));
    select.addEventListener("change", () => {
      setRole(select.value);
      void start();
    });
    parts.push(select);
  } else {
    parts.push(h("span", { class: "role-chip" }, ROLE_NAMES[me.activeRole]));
  }
  parts.push(h("button", { type: "button", class: "secondary", "data-action": "sign-out", onclick: () => { signOut(); showSignIn(); } }, "Sign out"));
  return parts;
}

/** /v1/me; a user holding several roles who has not picked one gets the first role they hold. */
async function whoAmI(): Promise<Me> {
  try {
    return await get<Me>("/v1/me");
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "ROLE_REQUIRED")) throw error;
  }
  for (const role of Object.keys(ROLE_NAMES)) {
    setRole(role);
    try {
      return await get<Me>("/v1/me");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 403)) throw error; // 403: a role not held
    }
  }
  throw new Error("none of your roles is accepted");
}

async function start(): Promise<void> {
  if (!session()) return showSignIn();
  mount(main, notice("Loading…"));
  try {
    const me = await whoAmI();
    mount(nav, ...sessionNav(me));
    mount(main, DASHBOARDS[me.activeRole](me));
    document.title = `${ROLE_NAMES[me.activeRole]} · MS8 Learning Analytics`;
  } catch (error) {
    if (!session()) return; // signed out by a 401: the sign-in page is showing
    mount(main, notice(`Could not load your profile: ${errorText(error)}`, "error"));
  }
}

async function boot(): Promise<void> {
  config = await loadConfig();
  configure(config.apiUrl, () => {
    signOut();
    showSignIn("Your session has ended; sign in again.");
  });
  const params = new URLSearchParams(location.search);
  if (config.auth && (params.has("code") || params.has("error"))) {
    try {
      await finishPkce(config.auth, params);
    } catch (error) {
      return showSignIn(errorText(error));
    }
  }
  await start();
}

void boot();
