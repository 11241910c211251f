// Where the API is and how users sign in. Deployed, `config.json` beside index.html is written at
// deploy time (the API URL and the OIDC issuer + app client from the stack's outputs). Locally
// there is no such file: the API is this origin and sign-in picks a demo user.

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope?: string;
  /** Optional: taken from the issuer's discovery document when left out. */
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
}

export interface AppConfig {
  apiUrl: string;
  auth: OidcConfig | null; // null: local demo sign-in
}

export async function loadConfig(): Promise<AppConfig> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
    if (res.ok && (res.headers.get("content-type") ?? "").includes("json")) {
      const raw = (await res.json()) as Partial<AppConfig>;
      return { apiUrl: (raw.apiUrl ?? "").replace(/\/$/, ""), auth: raw.auth ?? null };
    }
  } catch {
    // no config.json: the local stack
  }
  return { apiUrl: "", auth: null };
}
