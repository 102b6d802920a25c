import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App, KEY_STORAGE } from "./App";
import { churnPage, consumptionFixture, fakeFetch, user, WS } from "./test/fixtures";

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

function api(forbidden = false) {
  const deny = () => [403, { detail: "this API key does not cover the requested workspace" }] as [number, unknown];
  return fakeFetch({
    "/api/analytics/workspaces": () => [200, { workspaces: [WS] }],
    "/api/analytics/predictions/consumption": () => (forbidden ? deny() : [200, consumptionFixture(30)]),
    "/api/analytics/predictions/churn": () => (forbidden ? deny() : [200, churnPage([user("alice", 0.9)])]),
    "/api/analytics/predictions/churn/contacts": () => (forbidden ? deny() : [200, { workspace: WS, contacts: [] }]),
  });
}

describe("App", () => {
  it("asks for the key once, keeps it for the tab and sends it as a header", async () => {
    const { impl, calls } = api();
    vi.stubGlobal("fetch", impl);
    render(<App />);
    fireEvent.change(screen.getByTestId("api-key-input"), { target: { value: "pae_k" } });
    fireEvent.click(screen.getByTestId("api-key-submit"));
    expect(sessionStorage.getItem(KEY_STORAGE)).toBe("pae_k");
    await waitFor(() => expect(screen.getByTestId("card-credits").dataset.state).toBe("ok"));
    expect(window.location.search).toBe("?workspace=acme");
    expect(calls.every((c) => !c.url.includes("pae_k"))).toBe(true);
    expect(calls.every((c) => (c.init.headers as Record<string, string>)["X-API-Key"] === "pae_k")).toBe(true);
    await waitFor(() => expect(screen.getByTestId("growth-projections").dataset.state).toBe("not_built"));
  });

  it("shows an error, not data, for a workspace the key does not cover", async () => {
    sessionStorage.setItem(KEY_STORAGE, "pae_other");
    window.history.replaceState(null, "", "/?workspace=globex");
    vi.stubGlobal("fetch", api(true).impl);
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("consumption-forecast").dataset.state).toBe("error"));
    expect(screen.getByTestId("consumption-forecast").textContent).toContain("does not cover");
    expect(screen.getByTestId("churn-risk-matrix").dataset.state).toBe("error");
    expect((screen.getByTestId("workspace-picker") as HTMLSelectElement).value).toBe("globex");
  });
});
