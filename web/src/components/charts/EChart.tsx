import { useEffect, useRef } from "react";
import { echarts, type ChartOption } from "./echarts";

type Instance = ReturnType<typeof echarts.init>;

export interface EChartProps {
  option: ChartOption;
  height?: number;
  /** Called with the chart instance once created (e.g. to listen for clicks). */
  onReady?: (chart: Instance) => void;
  testId?: string;
  ariaLabel: string;
}

/**
 * One ECharts instance drawn with the SVG renderer: crisp at any zoom and readable from the DOM by tests.
 * The option is replaced (`notMerge`) on every change, and the chart follows its container's width.
 */
export function EChart({ option, height = 320, onReady, testId, ariaLabel }: EChartProps) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<Instance | null>(null);
  const readyRef = useRef(onReady);
  readyRef.current = onReady;

  useEffect(() => {
    if (!ref.current) return;
    const instance = echarts.init(ref.current, undefined, { renderer: "svg" });
    chart.current = instance;
    readyRef.current?.(instance);
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => instance.resize());
    observer?.observe(ref.current);
    return () => {
      observer?.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    chart.current?.setOption(option, { notMerge: true, lazyUpdate: false });
  }, [option]);

  return <div ref={ref} className="chart" style={{ height }} data-testid={testId} role="img" aria-label={ariaLabel} />;
}
