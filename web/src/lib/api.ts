// The API client: every call sends the key in the X-API-Key header (never in a URL) and turns answers that
// are not 2xx into an ApiError whose `kind` says which state a view should show.

export type ErrorKind =
  | "unauthorized" // 401: missing, invalid or revoked key
  | "forbidden" // 403: the key does not cover the workspace
  | "no_data" // 404 from a route that exists: unknown workspace or nothing predicted yet
  | "not_built" // 404 "Not Found" / 405: the endpoint does not exist on this server yet
  | "insufficient" // the API says there is too little data, with counts
  | "invalid" // 422
  | "unavailable" // 503
  | "network" // no answer at all
  | "server"; // anything else

export class ApiError extends Error {
  readonly status: number;
  readonly kind: ErrorKind;
  readonly body: unknown;

  constructor(status: number, kind: ErrorKind, message: string, body: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.kind = kind;
    this.body = body;
  }
}

export type Params = Record<string, string | number | boolean | string[] | null | undefined>;

export function queryString(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) v.forEach((item) => q.append(k, item));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Whether a body says "insufficient data" (a top-level or nested `status`), as the kinds record it. */
export function isInsufficient(body: unknown): boolean {
  if (!body || typeof body !== "object") return false;
  const b = body as Record<string, unknown>;
  if (b.status === "insufficient_data") return true;
  const detail = b.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail)) {
    return (detail as Record<string, unknown>).status === "insufficient_data";
  }
  return typeof detail === "string" && /insufficient[ _]data/i.test(detail);
}

function detailText(body: unknown, fallback: string): string {
  if (body && typeof body === "object") {
    const detail = (body as Record<string, unknown>).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => (d && typeof d === "object" ? `${(d as { loc?: unknown[] }).loc?.join(".") ?? ""}: ${(d as { msg?: string }).msg ?? ""}` : String(d)))
        .join("; ");
    }
    if (detail && typeof detail === "object") {
      const reason = (detail as Record<string, unknown>).reason ?? (detail as Record<string, unknown>).message;
      if (typeof reason === "string") return reason;
    }
    const reason = (body as Record<string, unknown>).reason;
    if (typeof reason === "string") return reason;
  }
  return fallback;
}

export function classify(status: number, body: unknown): ApiError {
  const text = detailText(body, `HTTP ${status}`);
  if (isInsufficient(body)) return new ApiError(status, "insufficient", text, body);
  if (status === 401) return new ApiError(status, "unauthorized", text, body);
  if (status === 403) return new ApiError(status, "forbidden", text, body);
  if (status === 405 || (status === 404 && text === "Not Found")) {
    return new ApiError(status, "not_built", "this endpoint is not available on the server yet", body);
  }
  if (status === 404) return new ApiError(status, "no_data", text, body);
  if (status === 422) return new ApiError(status, "invalid", text, body);
  if (status === 503) return new ApiError(status, "unavailable", text, body);
  return new ApiError(status, "server", text, body);
}

export interface Client {
  get<T>(path: string, params?: Params, signal?: AbortSignal): Promise<T>;
  post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T>;
}

export function createClient(apiKey: string, fetchImpl: typeof fetch = (...a) => fetch(...a)): Client {
  async function call<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetchImpl(path, {
        method,
        signal,
        headers: {
          "X-API-Key": apiKey,
          Accept: "application/json",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (exc) {
      if ((exc as Error).name === "AbortError") throw exc;
      throw new ApiError(0, "network", "the server did not answer; is `pae serve` running?");
    }
    let parsed: unknown = null;
    const text = await res.text();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { detail: text.slice(0, 200) };
      }
    }
    if (!res.ok) throw classify(res.status, parsed);
    // A kind may answer 200 with {"status": "insufficient_data", ...}: a state, not data.
    if (isInsufficient(parsed)) throw classify(res.status, parsed);
    return parsed as T;
  }
  return {
    get: (path, params = {}, signal) => call("GET", path + queryString(params), undefined, signal),
    post: (path, body, signal) => call("POST", path, body, signal),
  };
}

/** Numbers an "insufficient data" answer carries (e.g. {"churned": 12, "retained": 40}), flattened. */
export function insufficientCounts(body: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  let maxDepth = 3;
  const visit = (value: unknown, prefix: string, depth: number) => {
    if (depth > maxDepth || value === null || value === undefined) return;
    if (typeof value === "number" && Number.isFinite(value)) {
      out[prefix] = value;
    } else if (typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (k === "status") continue;
        visit(v, prefix ? `${prefix}.${k}` : k, depth + 1);
      }
    }
  };
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const detail = b.detail && typeof b.detail === "object" ? (b.detail as Record<string, unknown>) : null;
    const counts = b.counts ?? detail?.counts;
    if (counts === undefined) maxDepth = 1; // no `counts`: only the answer's own top-level numbers
    visit(counts ?? detail ?? b, "", 0);
  }
  return out;
}
