import type { ChurnContact, RiskFactor, UserChurnRisk } from "./types";

/** The churn wording's drivers (pipelines/churn/wording.py), in words. */
export const DRIVER_LABELS: Record<string, string> = {
  recency: "Recency",
  activity_drop: "Activity drop",
  narrow_usage: "Narrow usage",
  errors: "Errors",
  workspace_decline: "Workspace decline",
  tenure: "Tenure",
  low_usage: "Low usage",
  none: "No driver",
};

export const RISK_BINS = Array.from({ length: 10 }, (_, i) => `${i * 10}–${i * 10 + 10}%`);

const isStateEntry = (f: RiskFactor) => f.driver === "state" || f.direction === "state";

/** A user's risk factors, strongest first, without the state entry the pipeline appends. */
export function riskFactors(user: UserChurnRisk): RiskFactor[] {
  return (user.risk_factors ?? []).filter((f) => !isStateEntry(f)).sort((a, b) => b.contribution - a.contribution);
}

/** The key a factor is grouped by: its driver when the API gives it, else its feature column. */
export function factorKey(f: RiskFactor): string {
  return f.driver || f.feature;
}

export function factorLabel(key: string): string {
  const s = DRIVER_LABELS[key] ?? key.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function mainFactor(user: UserChurnRisk): string {
  const f = riskFactors(user)[0];
  return f ? factorKey(f) : "none";
}

/** Summed contribution per factor key (a driver can have several feature columns). */
export function contributions(user: UserChurnRisk): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of riskFactors(user)) out[factorKey(f)] = (out[factorKey(f)] ?? 0) + f.contribution;
  return out;
}

export function riskBin(probability: number): number {
  return Math.max(0, Math.min(9, Math.floor(probability * 10)));
}

export interface RiskMatrix {
  /** Factor keys, most users first. */
  factors: string[];
  /** [risk bin, factor index, users] for every non-empty cell. */
  cells: [number, number, number][];
  max: number;
}

/**
 * Users counted by risk decile × main risk factor: a fixed-size grid (10 × drivers) whatever the number of
 * users, so the heatmap stays light for a 5,000-user workspace; the table below lists the users themselves.
 */
export function riskMatrix(users: UserChurnRisk[]): RiskMatrix {
  const counts = new Map<string, number[]>();
  for (const u of users) {
    const key = mainFactor(u);
    let row = counts.get(key);
    if (!row) counts.set(key, (row = new Array(10).fill(0)));
    row[riskBin(u.churn_probability)] += 1;
  }
  const factors = [...counts.entries()]
    .sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0) || a[0].localeCompare(b[0]))
    .map(([k]) => k);
  const cells: [number, number, number][] = [];
  let max = 0;
  factors.forEach((f, fi) =>
    counts.get(f)!.forEach((n, bin) => {
      if (n > 0) cells.push([bin, fi, n]);
      max = Math.max(max, n);
    }),
  );
  return { factors, cells, max };
}

export function riskLevel(p: number): "high" | "medium" | "low" {
  return p >= 0.7 ? "high" : p >= 0.4 ? "medium" : "low";
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  let s = String(v);
  // A cell a spreadsheet would run as a formula is quoted as text.
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  "user_id", "user_external_id", "churn_probability", "risk_score", "risk_level", "state", "days_until_churn",
  "main_factor", "reasons", "recommended_actions", "contacted_at",
];

export function toCsv(users: UserChurnRisk[], contacted: Map<string, ChurnContact>): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const u of users) {
    const row = [
      u.user_id, u.user_external_id, u.churn_probability.toFixed(4), u.risk_score.toFixed(1), riskLevel(u.churn_probability),
      u.state ?? "", u.days_until_churn ?? "", factorLabel(mainFactor(u)),
      riskFactors(u).map((f) => f.text ?? f.feature).join("; "),
      (u.recommended_actions ?? []).map((a) => a.title).join("; "),
      contacted.get(u.user_id)?.contacted_at ?? "",
    ];
    lines.push(row.map(csvCell).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}
