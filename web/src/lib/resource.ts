import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, insufficientCounts } from "./api";

// What a view shows: never a blank chart.
export type Resource<T> =
  | { status: "loading" }
  | { status: "ok"; data: T }
  | { status: "no_data"; message: string }
  | { status: "not_built"; message: string }
  | { status: "insufficient"; message: string; counts: Record<string, number> }
  | { status: "error"; message: string; httpStatus: number; kind: string };

export function toResource<T>(exc: unknown): Resource<T> {
  if (exc instanceof ApiError) {
    switch (exc.kind) {
      case "no_data":
        return { status: "no_data", message: exc.message };
      case "not_built":
        return { status: "not_built", message: exc.message };
      case "insufficient":
        return { status: "insufficient", message: exc.message, counts: insufficientCounts(exc.body) };
      default:
        return { status: "error", message: exc.message, httpStatus: exc.status, kind: exc.kind };
    }
  }
  return { status: "error", message: (exc as Error)?.message ?? String(exc), httpStatus: 0, kind: "client" };
}

/**
 * Load once per change of `deps`; earlier requests are aborted so a slow answer for the previous workspace
 * never overwrites the current one. `reload()` asks again.
 */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): [Resource<T>, () => void] {
  const [state, setState] = useState<Resource<T>>({ status: "loading" });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctrl = new AbortController();
    setState({ status: "loading" });
    loadRef
      .current(ctrl.signal)
      .then((data) => {
        if (!ctrl.signal.aborted) setState({ status: "ok", data });
      })
      .catch((exc) => {
        if (!ctrl.signal.aborted && (exc as Error)?.name !== "AbortError") setState(toResource<T>(exc));
      });
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return [state, reload];
}

/** A loaded answer read by `parse`; an answer it cannot read is "no data" with `why`, not a blank view. */
export function mapResource<T, U>(r: Resource<T>, parse: (data: T) => U | null, why: string): Resource<U> {
  if (r.status !== "ok") return r;
  const v = parse(r.data);
  return v === null ? { status: "no_data", message: why } : { status: "ok", data: v };
}
