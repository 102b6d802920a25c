import { describe, expect, it } from "vitest";
import { fakeFetch } from "../test/fixtures";
import { ApiError, classify, createClient, insufficientCounts, queryString } from "./api";
import { toResource } from "./resource";

describe("classify", () => {
  it("tells a missing endpoint from a workspace without data", () => {
    expect(classify(404, { detail: "Not Found" }).kind).toBe("not_built");
    expect(classify(405, { detail: "Method Not Allowed" }).kind).toBe("not_built");
    const none = classify(404, { detail: "no churn predictions yet for workspace 'acme'; run the nightly pipeline" });
    expect(none.kind).toBe("no_data");
    expect(none.message).toContain("run the nightly pipeline");
  });

  it("maps auth, validation and outages", () => {
    expect(classify(401, { detail: "invalid API key" }).kind).toBe("unauthorized");
    expect(classify(403, { detail: "this API key does not cover the requested workspace" }).kind).toBe("forbidden");
    expect(classify(422, { detail: [{ loc: ["query", "days_ahead"], msg: "too big", type: "x" }] }).message).toBe("query.days_ahead: too big");
    expect(classify(503, { detail: "database unavailable" }).kind).toBe("unavailable");
  });

  it("reads insufficient data with its counts, whatever the status", () => {
    const body = { detail: { status: "insufficient_data", reason: "fewer than 100 churned users", counts: { churned: 12, retained: 80 } } };
    const err = classify(409, body);
    expect(err.kind).toBe("insufficient");
    expect(err.message).toBe("fewer than 100 churned users");
    expect(insufficientCounts(body)).toEqual({ churned: 12, retained: 80 });
    const flat = { status: "insufficient_data", reason: "too little history", days_of_history: 20, active_users: 4 };
    expect(insufficientCounts(flat)).toEqual({ days_of_history: 20, active_users: 4 });
    expect(toResource(classify(200, flat))).toMatchObject({ status: "insufficient", counts: { days_of_history: 20 } });
  });
});

describe("client", () => {
  it("sends the key in a header, never in the URL", async () => {
    const { impl, calls } = fakeFetch({ "/api/x": () => [200, { ok: 1 }] });
    const client = createClient("pae_secret", impl);
    expect(await client.get("/api/x", { workspace_id: "acme", users: ["a", "b"], skip: undefined })).toEqual({ ok: 1 });
    expect(calls[0].url).toBe("http://dash.test/api/x?workspace_id=acme&users=a&users=b");
    expect(calls[0].url).not.toContain("pae_secret");
    expect((calls[0].init.headers as Record<string, string>)["X-API-Key"]).toBe("pae_secret");
  });

  it("turns a 200 'insufficient_data' answer into a state", async () => {
    const { impl } = fakeFetch({ "/api/g": () => [200, { status: "insufficient_data", counts: { active_users: 3 } }] });
    await expect(createClient("k", impl).get("/api/g")).rejects.toMatchObject({ kind: "insufficient" });
  });

  it("reports a server that does not answer", async () => {
    const client = createClient("k", (async () => { throw new TypeError("fetch failed"); }) as typeof fetch);
    const err = (await client.get("/api/x").catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.kind).toBe("network");
  });

  it("builds query strings", () => {
    expect(queryString({})).toBe("");
    expect(queryString({ a: 1, b: null, c: true })).toBe("?a=1&c=true");
  });
});
