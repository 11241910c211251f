// The service's API with the user's token (and the active role for users holding several).
// Types follow the OpenAPI document; only the fields the dashboards read are listed.

import { session } from "./auth";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let base = "";
let onUnauthorized: () => void = () => undefined;

export function configure(apiUrl: string, unauthorized: () => void): void {
  base = apiUrl;
  onUnauthorized = unauthorized;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const s = session();
  const headers: Record<string, string> = {};
  if (s) headers.authorization = `Bearer ${s.token}`;
  if (s?.role) headers["x-active-role"] = s.role;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    const err = (data as { error?: { code: string; message: string }; message?: string } | null) ?? {};
    throw new ApiError(res.status, err.error?.code ?? String(res.status), err.error?.message ?? err.message ?? res.statusText);
  }
  return data as T;
}

export const get = <T>(path: string) => call<T>("GET", path);

export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}

export type Role = "learner" | "trainer" | "org_admin";
export type AnalyticsType = "learning_velocity" | "engagement" | "mastery" | "skill_gap";
export const ANALYTICS_TYPES: AnalyticsType[] = ["learning_velocity", "engagement", "mastery", "skill_gap"];

export interface Me {
  userId: string;
  organizationId: string;
  name: string;
  email: string;
  roles: Role[];
  activeRole: Role;
}

export interface Analytics {
  analyticsType: AnalyticsType;
  data: Record<string, unknown>;
  updatedAt: string;
  dataThrough: string | null;
}

export interface PeerGroup {
  p25: number;
  p50: number;
  p75: number;
  average: number;
  userCount: number;
}

export interface ComparisonItem {
  analyticsType: AnalyticsType;
  metric: string;
  available: boolean;
  yourValue: number | null;
  peers: PeerGroup | null;
  message: string | null;
}

export interface Gamification {
  points: number;
  level: number;
  nextLevelAt: number | null;
  streak: { current: number; longest: number; lastActiveDate: string | null };
  badges: { id: string; name: string; earnedAt: string | null }[];
}

export interface LeaderboardEntry {
  rank: number;
  displayName: string;
  points: number;
  level: number;
  isYou: boolean;
}

export interface Leaderboard {
  items: LeaderboardEntry[];
  you: LeaderboardEntry | null;
  participants: number;
}

export interface Report {
  id: string;
  status: "pending" | "ready" | "failed" | "expired";
  format: string;
  kind: string;
  error: string | null;
  download: { url: string; fileName: string; contentType: string; expiresAt: string } | null;
}

export interface RiskReason {
  code: string;
  message: string;
}

export interface LearnerMetrics {
  velocity: number | null;
  engagement: number | null;
  mastery: number | null;
  skillGap: number | null;
}

export interface LearnerRow {
  userId: string;
  displayName: string;
  email: string;
  lastActivityAt: string | null;
  metrics: LearnerMetrics;
  trend: { velocity: number; previousVelocity: number };
  atRisk: boolean;
  riskReasons: RiskReason[];
}

export interface LearnerList {
  items: LearnerRow[];
  trainerId: string | null;
  atRisk: number;
}

/** One ISO week (Monday, UTC) of a learner's own activity. */
export interface LearnerWeek {
  weekStart: string;
  completions: number;
  activeDays: number;
  minutes: number;
  assessments: number;
  meanScore: number | null;
}

export interface SkillStanding {
  skill: string;
  mastery: number | null;
  target: number | null;
  gap: number | null;
}

export interface LearnerDetail {
  learner: LearnerRow;
  weeks: LearnerWeek[];
  skills: SkillStanding[];
}

export interface Rollup {
  scope: string;
  trainerId: string | null;
  granularity: string;
  periodStart: string;
  periodEnd: string;
  learners: number | null;
  activeLearners: number | null;
  activeShare: number | null;
  completions: number | null;
  velocity: number | null;
  meanScore: number | null;
  minutesPerActiveLearner: number | null;
  suppressed: boolean;
}

export interface CohortList {
  items: Cohort[];
  unassignedLearners: number;
}

export interface Cohort {
  trainerId: string;
  displayName: string;
  learners: number;
  atRisk: number;
  activeShare: number | null;
}

export interface DirectoryUser {
  id: string;
  name: string;
  email: string;
  roles: Role[];
}

export interface SkillTarget {
  skill: string;
  targetLevel: number;
  updatedAt: string;
}

/** Every page of GET /v1/users. */
export async function allUsers(): Promise<DirectoryUser[]> {
  const users: DirectoryUser[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: DirectoryUser[]; nextCursor: string | null } = await get(`/v1/users${query({ limit: 200, cursor })}`);
    users.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return users;
}

/** Create a report (generated synchronously; a pending one is polled until it settles). */
export async function makeReport(body: Record<string, unknown>): Promise<Report> {
  let report = await call<Report>("POST", "/v1/reports", body);
  for (let i = 0; i < 30 && report.status === "pending"; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    report = await get<Report>(`/v1/reports/${report.id}`);
  }
  if (report.status !== "ready" || !report.download) throw new Error(report.error ?? `the report is ${report.status}`);
  return report;
}
