// Shared by the end-to-end test and the budget benchmark: Debian's Chromium driven by playwright-core.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
    ],
  });
}

/** Fetch the API from Node with a key, as the dashboard does, to compare what it shows with what it got. */
export async function api(base, key, path, params = {}, init = {}) {
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
  const res = await fetch(url, { ...init, headers: { "X-API-Key": key, "Content-Type": "application/json", ...(init.headers || {}) } });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
