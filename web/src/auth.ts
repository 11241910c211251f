// The user's token, kept in sessionStorage (gone when the tab closes), and the two ways to get
// one: the local demo sign-in (the local gateway mints a token for a demo user) and, deployed,
// OpenID Connect authorization code with PKCE against the user pool the API trusts.

import type { OidcConfig } from "./config";

const TOKEN = "ms8.token";
const ROLE = "ms8.role";
const PKCE = "ms8.pkce";

export interface Session {
  token: string;
  role: string | null; // X-Active-Role for users holding several roles
}

export function session(): Session | null {
  const token = sessionStorage.getItem(TOKEN);
  return token ? { token, role: sessionStorage.getItem(ROLE) } : null;
}

export function signIn(token: string, role: string | null = null): void {
  sessionStorage.setItem(TOKEN, token);
  setRole(role);
}

export function setRole(role: string | null): void {
  if (role) sessionStorage.setItem(ROLE, role);
  else sessionStorage.removeItem(ROLE);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(ROLE);
}

// --- local demo sign-in (the local gateway only; never deployed) ---------------------------------

export interface DemoUser {
  userId: string;
  handle: string;
  login: string; // organization:handle, unique across organizations
  organization: string;
  name: string;
  email: string;
  roles: string[];
}

export async function demoUsers(apiUrl: string): Promise<DemoUser[]> {
  const res = await fetch(`${apiUrl}/local/demo-users`);
  if (!res.ok) throw new Error(`the local sign-in is not available (${res.status})`);
  return ((await res.json()) as { items: DemoUser[] }).items;
}

export async function demoToken(apiUrl: string, userId: string): Promise<string> {
  const res = await fetch(`${apiUrl}/local/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`no token for that user (${res.status})`);
  return ((await res.json()) as { token: string }).token;
}

// --- OIDC authorization code + PKCE (deployed) -----------------------------------------------

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** RFC 7636 S256: base64url(SHA-256(verifier)). */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

interface Endpoints {
  authorization: string;
  token: string;
}

async function endpoints(cfg: OidcConfig): Promise<Endpoints> {
  if (cfg.authorizationEndpoint && cfg.tokenEndpoint) {
    return { authorization: cfg.authorizationEndpoint, token: cfg.tokenEndpoint };
  }
  const res = await fetch(`${cfg.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`the sign-in service did not answer (${res.status})`);
  const doc = (await res.json()) as { authorization_endpoint: string; token_endpoint: string };
  return { authorization: doc.authorization_endpoint, token: doc.token_endpoint };
}

function redirectUri(): string {
  return new URL(import.meta.env.BASE_URL, location.origin).href; // the app's own root: /app/
}

/** Send the browser to the sign-in page; it comes back to /app/?code=...&state=... */
export async function startPkce(cfg: OidcConfig): Promise<void> {
  const ep = await endpoints(cfg);
  const verifier = randomString(48);
  const state = randomString(16);
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const url = new URL(ep.authorization);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: cfg.clientId,
    redirect_uri: redirectUri(),
    scope: cfg.scope ?? "openid email profile",
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.href);
}

/** On the way back: swap the code for tokens (the verifier proves this tab started it). */
export async function finishPkce(cfg: OidcConfig, params: URLSearchParams): Promise<void> {
  const saved = JSON.parse(sessionStorage.getItem(PKCE) ?? "null") as { verifier: string; state: string } | null;
  sessionStorage.removeItem(PKCE);
  history.replaceState(null, "", redirectUri());
  if (params.get("error")) throw new Error(params.get("error_description") ?? params.get("error") ?? "sign-in failed");
  if (!saved || saved.state !== params.get("state")) throw new Error("the sign-in answer does not match this tab; try again");
  const ep = await endpoints(cfg);
  const res = await fetch(ep.token, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: cfg.clientId,
      code: params.get("code") ?? "",
      redirect_uri: redirectUri(),
      code_verifier: saved.verifier,
    }),
  });
  if (!res.ok) throw new Error(`the sign-in service refused the code (${res.status})`);
  const tokens = (await res.json()) as { access_token: string };
  // The API's authorizer accepts the access token (its client_id is an accepted audience).
  signIn(tokens.access_token);
}
