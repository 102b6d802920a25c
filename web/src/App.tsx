import { useEffect, useMemo, useState, type FormEvent } from "react";
import { PredictiveAnalyticsDashboard } from "./components/analytics/PredictiveAnalyticsDashboard";
import { ViewState } from "./components/ViewState";
import { createClient } from "./lib/api";
import { ClientContext } from "./lib/client-context";
import * as api from "./lib/endpoints";
import { useResource } from "./lib/resource";

export const KEY_STORAGE = "pae.apiKey";
const DEFAULT_HORIZON = 30;

function readKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return "";
  }
}

function urlParam(name: string): string | null {
  return new URLSearchParams(window.location.search).get(name);
}

/** Put the workspace (never the key) in the address bar, so a link opens the same view. */
function setUrlWorkspace(ws: string) {
  const url = new URL(window.location.href);
  url.searchParams.set("workspace", ws);
  window.history.replaceState(null, "", url.toString());
}

export function ApiKeyForm({ onKey, error }: { onKey: (key: string) => void; error?: string }) {
  const [value, setValue] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) onKey(value.trim());
  };
  return (
    <form className="key-form" onSubmit={submit} autoComplete="off">
      <h2>Enter your API key</h2>
      <p>
        The dashboard reads the same API as every client, with the same key. Get one with{" "}
        <code>.venv/bin/pae api-key create --workspace &lt;workspace id&gt;</code>. It is kept for this browser tab only
        (sessionStorage) and sent in the <code>X-API-Key</code> header, never in a URL.
      </p>
      <label>
        API key
        <input type="password" data-testid="api-key-input" value={value} onChange={(e) => setValue(e.target.value)}
          placeholder="pae_…" autoFocus spellCheck={false} />
      </label>
      <button type="submit" data-testid="api-key-submit" disabled={!value.trim()}>Open the dashboard</button>
      {error && <p className="error-message" role="alert">{error}</p>}
    </form>
  );
}

export function App() {
  const [key, setKey] = useState(readKey);
  const [workspace, setWorkspace] = useState<string | null>(() => urlParam("workspace"));
  const horizon = Number(urlParam("horizon")) || DEFAULT_HORIZON;
  const client = useMemo(() => (key ? createClient(key) : null), [key]);

  const [list] = useResource((s) => (client ? api.workspaces(client, s) : Promise.resolve(null)), [client]);
  const workspaces = list.status === "ok" && list.data ? list.data.workspaces : [];
  const active = workspace ?? workspaces[0]?.external_id ?? null;

  useEffect(() => {
    if (active && !urlParam("workspace") && list.status === "ok") setUrlWorkspace(active);
  }, [active, list.status]);

  const saveKey = (k: string) => {
    try {
      sessionStorage.setItem(KEY_STORAGE, k);
    } catch {
      /* storage off: the key lives in memory for this page */
    }
    setKey(k);
  };
  const forgetKey = () => {
    sessionStorage.removeItem(KEY_STORAGE);
    setKey("");
  };
  const pick = (ws: string) => {
    setWorkspace(ws);
    setUrlWorkspace(ws);
  };

  const keyRefused = list.status === "error" && list.kind === "unauthorized";
  useEffect(() => {
    if (keyRefused) sessionStorage.removeItem(KEY_STORAGE); // a refused key is not kept for the tab
  }, [keyRefused]);
  return (
    <div className="app">
      <header className="topbar">
        <h1>Predictive Analytics</h1>
        {client && !keyRefused && (
          <div className="topbar__controls">
            <label>
              Workspace{" "}
              <select data-testid="workspace-picker" value={active ?? ""} onChange={(e) => pick(e.target.value)}>
                {active && !workspaces.some((w) => w.external_id === active || w.id === active) && <option value={active}>{active}</option>}
                {workspaces.map((w) => (
                  <option key={w.id} value={w.external_id} title={w.id}>{w.external_id}</option>
                ))}
              </select>
            </label>
            <button type="button" className="link" onClick={forgetKey}>Change key</button>
          </div>
        )}
      </header>
      <main>
        {!client || keyRefused ? (
          <ApiKeyForm onKey={saveKey} error={keyRefused ? `The key was refused: ${list.status === "error" ? list.message : ""}` : undefined} />
        ) : !active ? (
          <ViewState resource={list.status === "ok" ? { status: "no_data", message: "this key covers no workspace" } : list} what="workspaces" />
        ) : (
          <ClientContext.Provider value={client}>
            <PredictiveAnalyticsDashboard key={active} workspaceId={active} predictionHorizon={horizon} />
          </ClientContext.Provider>
        )}
      </main>
    </div>
  );
}
