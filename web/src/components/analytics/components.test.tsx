import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../../lib/api";
import type { Resource } from "../../lib/resource";
import { consumptionFixture, user } from "../../test/fixtures";
import { ViewState } from "../ViewState";
import { ChurnRiskMatrix } from "./ChurnRiskMatrix";
import { ConsumptionForecast } from "./ConsumptionForecast";
import { nextCredits, PredictionSummaryCards } from "./PredictionSummaryCards";

const ok = <T,>(data: T): Resource<T> => ({ status: "ok", data });

describe("ConsumptionForecast", () => {
  const c = consumptionFixture(30);
  const props = { predictions: c.predictions, historical: c.history, breakdown: c.breakdown, asOfDate: c.as_of_date, confidenceLevel: 0.95, workspaceId: "acme", horizonDays: 30 };

  it("draws the chart and the breakdown, and disables scenarios while what-if is not built", async () => {
    const runWhatIf = vi.fn().mockRejectedValue(new ApiError(404, "not_built", "not there"));
    render(<ConsumptionForecast {...props} runWhatIf={runWhatIf} />);
    const root = screen.getByTestId("consumption-forecast");
    expect(root.dataset.state).toBe("ok");
    expect(within(root).getByTestId("forecast-chart").querySelector("svg")).not.toBeNull();
    expect(screen.getByTestId("forecast-breakdown").textContent).toContain("chat");
    expect(await screen.findByTestId("whatif-unavailable")).toHaveProperty("textContent", "what-if not available yet");
    expect(screen.getByTestId("scenario-controls")).toHaveProperty("disabled", true);
    expect(runWhatIf).toHaveBeenCalledWith(expect.objectContaining({ workspace_id: "acme", adjustments: [] }));
  });

  it("overlays the adjusted forecast once what-if answers", async () => {
    const adjusted = c.predictions.map((p) => ({ date: p.date, predicted_value: p.predicted_value! * 1.2, lower: p.lower! * 1.2, upper: p.upper! * 1.2 }));
    const runWhatIf = vi.fn().mockImplementation(async (req) =>
      req.adjustments.length
        ? { metrics: [{ metric: "credits", baseline: c.predictions, adjusted, difference: 999, explanations: ["usage +20% from Jul 1"] }] }
        : { metrics: [{ metric: "credits", baseline: c.predictions, adjusted: c.predictions }] },
    );
    render(<ConsumptionForecast {...props} runWhatIf={runWhatIf} />);
    await waitFor(() => expect(screen.getByTestId("scenario-controls")).toHaveProperty("disabled", false));
    fireEvent.change(screen.getByTestId("scenario-usage"), { target: { value: "20" } });
    const result = await screen.findByTestId("whatif-result", {}, { timeout: 2000 });
    expect(result.textContent).toContain("+999 credits");
    expect(result.textContent).toContain("usage +20% from Jul 1");
    expect(runWhatIf).toHaveBeenLastCalledWith(expect.objectContaining({ adjustments: [expect.objectContaining({ type: "usage_change", percent: 20 })] }));
  });

  it("shows the load's state instead of an empty chart", () => {
    render(<ConsumptionForecast predictions={[]} historical={[]} resource={{ status: "no_data", message: "no credit consumption predictions yet" }} />);
    const root = screen.getByTestId("consumption-forecast");
    expect(root.dataset.state).toBe("no_data");
    expect(root.textContent).toContain("No data yet");
    expect(root.querySelector("svg")).toBeNull();
  });
});

describe("ChurnRiskMatrix", () => {
  const users = [user("alice", 0.91), user("bob", 0.15), user("carol", 0.55), user("dave", 0.72)];

  it("lists users, sorts them and opens the detail on click", async () => {
    const onUserSelect = vi.fn();
    render(<ChurnRiskMatrix users={users} onUserSelect={onUserSelect} predictionDate="2026-06-30" />);
    const table = screen.getByTestId("churn-table");
    const names = () => [...table.querySelectorAll("tbody tr[data-user-id]")].map((r) => r.children[1].textContent);
    expect(names()).toEqual(["alice", "bob", "carol", "dave"]);
    fireEvent.click(within(table).getByRole("button", { name: /Churn probability/ }));
    expect(names()).toEqual(["alice", "dave", "carol", "bob"]);
    fireEvent.click(within(table).getByRole("button", { name: /Recency/ }));
    expect(names()[0]).toBe("alice");

    fireEvent.click(within(table).getByText("dave"));
    const detail = screen.getByTestId("churn-user-detail");
    expect(onUserSelect).toHaveBeenCalledWith(users[3].user_id);
    expect(within(detail).getByTestId("detail-probability").textContent).toBe("72.0%");
    expect(within(detail).getByTestId("detail-state").textContent).toBe("lapsing");
    expect(within(detail).getByTestId("detail-days").textContent).toBe("about 9 days");
    expect(within(detail).getByTestId("detail-reasons").textContent).toContain("no activity for 19 days");
    expect(within(detail).getByTestId("detail-reasons").textContent).not.toContain("usual gaps");
    expect(within(detail).getByTestId("detail-actions").textContent).toContain("Re-engagement email");
  });

  it("marks a selection as contacted through the handler", async () => {
    const onMark = vi.fn().mockResolvedValue(undefined);
    render(<ChurnRiskMatrix users={users} onUserSelect={() => undefined} onMarkContacted={onMark} />);
    const button = screen.getByTestId("mark-contacted");
    expect(button).toHaveProperty("disabled", true);
    fireEvent.click(screen.getByLabelText("Select alice"));
    fireEvent.click(screen.getByLabelText("Select carol"));
    expect(screen.queryByTestId("churn-user-detail")).toBeNull(); // a checkbox does not open the detail
    await act(async () => fireEvent.click(button));
    expect(onMark).toHaveBeenCalledWith([users[0].user_id, users[2].user_id]);
    expect(screen.getByRole("status").textContent).toBe("Marked 2 users as contacted.");
  });

  it("renders only the visible rows of 5,000 users", () => {
    const many = Array.from({ length: 5000 }, (_, i) => user(`u${i}`, (i % 97) / 97));
    const t0 = performance.now();
    render(<ChurnRiskMatrix users={many} onUserSelect={() => undefined} />);
    const elapsed = performance.now() - t0;
    const rows = screen.getByTestId("churn-table").querySelectorAll("tbody tr[data-user-id]");
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(60);
    expect(elapsed).toBeLessThan(3000);
  });
});

describe("states", () => {
  it("shows insufficient data with the API's counts", () => {
    render(<ViewState resource={{ status: "insufficient", message: "fewer than 100 churned users", counts: { churned: 12, retained: 80 } }} what="churn scores" />);
    expect(screen.getByTestId("insufficient-counts").textContent).toBe("churned12retained80");
  });

  it("explains a key that does not cover the workspace", () => {
    render(<ViewState resource={{ status: "error", message: "this API key does not cover the requested workspace", httpStatus: 403, kind: "forbidden" }} what="x" />);
    expect(screen.getByRole("alert").textContent).toContain("403");
    expect(screen.getByText(/Pick one of the key's workspaces/)).toBeTruthy();
  });

  it("summary cards show numbers or a state each", () => {
    const c = consumptionFixture(30);
    render(
      <PredictionSummaryCards consumption={ok(c)} churn={ok({ prediction_date: "2026-06-30", total: 10, high: 2, medium: 3, low: 5 })}
        growth={{ status: "not_built", message: "" }} capacity={{ status: "loading" }} agents={{ status: "insufficient", message: "", counts: { agents: 0 } }} />,
    );
    expect(screen.getByTestId("card-credits-value").textContent).toBe("3,300");
    expect(screen.getByTestId("card-churn-high").textContent).toContain("2");
    expect(screen.getByTestId("card-growth").textContent).toContain("Not available yet");
    expect(screen.getByTestId("card-capacity").textContent).toContain("Loading");
    expect(screen.getByTestId("card-agents").textContent).toContain("agents 0");
    const n = nextCredits(c);
    expect(n).toMatchObject({ value: 3300, lower: 3000, upper: 3600, days: 30 });
    expect(n.trend).toBeCloseTo(3300 / c.history.slice(-30).reduce((a, h) => a + h.value, 0) - 1, 6);
  });
});
