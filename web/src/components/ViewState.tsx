import type { ReactNode } from "react";
import type { Resource } from "../lib/resource";

const TITLES: Record<string, string> = {
  loading: "Loading…",
  no_data: "No data yet",
  not_built: "Not available yet",
  insufficient: "Not enough data yet",
  error: "Could not load",
};

function errorHint(r: Extract<Resource<unknown>, { status: "error" }>): string {
  switch (r.kind) {
    case "forbidden":
      return "This API key does not cover this workspace. Pick one of the key's workspaces, or use a key for this one.";
    case "unauthorized":
      return "The API key was refused (missing, unknown or revoked). Enter a valid key.";
    case "unavailable":
      return "The database is unavailable; try again in a moment.";
    case "network":
      return "The server did not answer.";
    default:
      return "";
  }
}

/**
 * The state of a view that has nothing to draw: loading, no data yet, insufficient data (with the counts the
 * API gave), an endpoint that does not exist yet, or an error. `what` names the data ("growth projections").
 */
export function ViewState({ resource, what, notBuilt }: { resource: Resource<unknown>; what: string; notBuilt?: ReactNode }) {
  if (resource.status === "ok") return null;
  const title = TITLES[resource.status];
  let body: ReactNode = null;
  switch (resource.status) {
    case "loading":
      body = <span className="spinner" aria-hidden="true" />;
      break;
    case "no_data":
      body = (
        <p>
          No {what} for this workspace yet: {resource.message}
        </p>
      );
      break;
    case "not_built":
      body = notBuilt ?? <p>The server does not serve {what} yet; this view fills in once its endpoint lands.</p>;
      break;
    case "insufficient": {
      const counts = Object.entries(resource.counts);
      body = (
        <>
          <p>{resource.message || `Too little history to predict ${what}.`}</p>
          {counts.length > 0 && (
            <dl className="counts" data-testid="insufficient-counts">
              {counts.map(([k, v]) => (
                <div key={k}>
                  <dt>{k.replace(/_/g, " ")}</dt>
                  <dd>{v.toLocaleString("en-US")}</dd>
                </div>
              ))}
            </dl>
          )}
        </>
      );
      break;
    }
    case "error":
      body = (
        <>
          <p className="error-message" role="alert">
            {resource.httpStatus ? `${resource.httpStatus}: ` : ""}
            {resource.message}
          </p>
          {errorHint(resource) && <p className="hint">{errorHint(resource)}</p>}
        </>
      );
      break;
  }
  return (
    <div className={`view-state view-state--${resource.status}`} data-state={resource.status} aria-live="polite">
      <strong>{title}</strong>
      {body}
    </div>
  );
}

/** The frame of every view: a titled section whose root carries the component's data-testid. */
export function Panel({
  testId,
  title,
  subtitle,
  actions,
  state,
  children,
}: {
  testId: string;
  title: string;
  subtitle?: ReactNode;
  actions?: ReactNode;
  state: string;
  children: ReactNode;
}) {
  return (
    <section className="panel" data-testid={testId} data-state={state} aria-label={title}>
      <header className="panel__header">
        <div>
          <h2>{title}</h2>
          {subtitle && <p className="panel__subtitle">{subtitle}</p>}
        </div>
        {actions && <div className="panel__actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}
