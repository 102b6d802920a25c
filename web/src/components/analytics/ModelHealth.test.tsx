import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { parseModelHealth } from "../../lib/modelHealth";
import { healthBody } from "../../test/modelHealthFixture";
import { ModelHealth } from "./ModelHealth";

describe("ModelHealth", () => {
  it("lists every kind with its status, figures, versions and A/B, and charts daily WAPE", () => {
    const view = parseModelHealth(healthBody)!;
    render(<ModelHealth view={view} resource={{ status: "ok", data: view }} />);
    const root = screen.getByTestId("model-health");
    expect(root.dataset.state).toBe("ok");
    expect(root.textContent).toContain("2 alerting");
    expect(within(root).getByTestId("model-health-chart").querySelector("svg")).not.toBeNull();
    const rows = within(screen.getByTestId("model-health-kinds")).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain("Credit consumption");
    expect(rows[0].textContent).toContain("WAPE 30.0% vs 10.0% promised");
    expect(rows[0].textContent).toContain("v2 / v3");
    expect(rows[0].textContent).toContain("no difference (-0.100 [-0.300, 0.100])");
    expect(rows[1].textContent).toContain("AUC 0.500 · Brier 0.338");
    expect(rows[1].className).toBe("is-alert");
  });

  it("says when nothing was monitored yet, and shows the load's state otherwise", () => {
    const empty = parseModelHealth({ as_of_date: null, window_days: 14, kinds: [] })!;
    const { unmount } = render(<ModelHealth view={empty} resource={{ status: "ok", data: empty }} />);
    expect(screen.getByTestId("model-health").dataset.state).toBe("no_data");
    expect(screen.getByTestId("model-health").textContent).toContain("has not scored any prediction yet");
    unmount();
    render(<ModelHealth view={null} resource={{ status: "not_built", message: "" }} />);
    expect(screen.getByTestId("model-health").dataset.state).toBe("not_built");
  });
});
