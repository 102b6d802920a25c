import {
  createColumnHelper,
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type RowSelectionState,
  type SortingState,
} from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useMemo, useRef, useState } from "react";
import {
  contributions,
  factorLabel,
  mainFactor,
  riskBin,
  riskFactors,
  riskLevel,
  riskMatrix,
  RISK_BINS,
  toCsv,
} from "../../lib/churn";
import { fmtDate, fmtPercent } from "../../lib/format";
import type { Resource } from "../../lib/resource";
import type { ChurnContact, UserChurnRisk } from "../../lib/types";
import type { ChartOption } from "../charts/echarts";
import { EChart } from "../charts/EChart";
import { Panel, ViewState } from "../ViewState";

export interface ChurnRiskMatrixProps {
  users: UserChurnRisk[];
  onUserSelect: (userId: string) => void;
  resource?: Resource<unknown>;
  predictionDate?: string;
  /** Users scored in all, when more were scored than loaded. */
  total?: number;
  contacted?: Map<string, ChurnContact>;
  /** Store "contacted" for these users through the API; resolves when stored. */
  onMarkContacted?: (userIds: string[]) => Promise<void>;
  workspaceLabel?: string;
}

const ROW_HEIGHT = 34;
const NO_CONTACTS = new Map<string, ChurnContact>();
/** A table row: the user with what the table derives from it (kept in the data, as TanStack caches values per row). */
type Row = UserChurnRisk & { contrib: Record<string, number>; contactedAt: string };
const col = createColumnHelper<Row>();

function userLabel(u: UserChurnRisk) {
  return u.user_external_id ?? `${u.user_id.slice(0, 8)}…`;
}

function download(filename: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function ChurnUserDetail({ user, contact, onClose }: { user: UserChurnRisk; contact?: ChurnContact; onClose: () => void }) {
  const factors = riskFactors(user);
  const level = riskLevel(user.churn_probability);
  return (
    <div className="churn-detail" data-testid="churn-user-detail" role="dialog" aria-label={`Churn risk of ${userLabel(user)}`}>
      <header>
        <h3>{userLabel(user)}</h3>
        <button type="button" className="link" onClick={onClose} aria-label="Close detail">×</button>
      </header>
      <dl className="facts">
        <div><dt>Churn probability</dt><dd data-testid="detail-probability">{fmtPercent(user.churn_probability, 1)}</dd></div>
        <div><dt>Risk</dt><dd><span className={`badge badge--${level}`}>{level}</span> · score {user.risk_score.toFixed(0)}/100</dd></div>
        {user.state && <div><dt>State</dt><dd data-testid="detail-state"><span className={`badge badge--state-${user.state}`}>{user.state}</span></dd></div>}
        <div><dt>Days until churn</dt><dd data-testid="detail-days">{user.days_until_churn == null ? "not expected within the window" : `about ${user.days_until_churn} day${user.days_until_churn === 1 ? "" : "s"}`}</dd></div>
        {contact && <div><dt>Contacted</dt><dd>{fmtDate(contact.contacted_at)}{contact.note ? ` · ${contact.note}` : ""}</dd></div>}
      </dl>
      <h4>Why</h4>
      {factors.length ? (
        <ul className="reasons" data-testid="detail-reasons">
          {factors.map((f, i) => (
            <li key={i}><strong>{factorLabel(f.driver || f.feature)}</strong>: {f.text ?? f.feature}</li>
          ))}
        </ul>
      ) : (
        <p className="hint">No risk-raising factor was found for this user.</p>
      )}
      <h4>Recommended actions</h4>
      {user.recommended_actions?.length ? (
        <ol className="actions" data-testid="detail-actions">
          {user.recommended_actions.map((a) => (
            <li key={a.action_id}>
              <strong>{a.title}</strong>
              {a.priority != null && <span className="badge">{String(a.priority)}</span>}
              {a.reason && <div className="hint">{a.reason}</div>}
            </li>
          ))}
        </ol>
      ) : (
        <p className="hint">No action recommended.</p>
      )}
      {user.model_version && <p className="hint">Model {user.model_version}</p>}
    </div>
  );
}

export function ChurnRiskMatrix({
  users,
  onUserSelect,
  resource = { status: "ok", data: null },
  predictionDate,
  total,
  contacted = NO_CONTACTS,
  onMarkContacted,
  workspaceLabel = "workspace",
}: ChurnRiskMatrixProps) {
  const [sorting, setSorting] = useState<SortingState>([]);
  const [selection, setSelection] = useState<RowSelectionState>({});
  const [cell, setCell] = useState<{ factor: string; bin: number } | null>(null);
  const [detailId, setDetailId] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const matrix = useMemo(() => riskMatrix(users), [users]);
  const matrixRef = useRef(matrix);
  matrixRef.current = matrix;
  const factorKeys = matrix.factors.filter((f) => f !== "none");
  const data = useMemo<Row[]>(() => {
    const shown = cell ? users.filter((u) => mainFactor(u) === cell.factor && riskBin(u.churn_probability) === cell.bin) : users;
    return shown.map((u) => ({ ...u, contrib: contributions(u), contactedAt: contacted.get(u.user_id)?.contacted_at ?? "" }));
  }, [users, cell, contacted]);

  const columns = useMemo(
    () => [
      col.display({
        id: "select",
        header: ({ table }) => (
          <input type="checkbox" aria-label="Select all shown users" checked={table.getIsAllRowsSelected()}
            ref={(el) => { if (el) el.indeterminate = table.getIsSomeRowsSelected(); }}
            onChange={table.getToggleAllRowsSelectedHandler()} />
        ),
        cell: ({ row }) => (
          <input type="checkbox" aria-label={`Select ${userLabel(row.original)}`} checked={row.getIsSelected()}
            onClick={(e) => e.stopPropagation()} onChange={row.getToggleSelectedHandler()} />
        ),
        size: 36,
      }),
      col.accessor((u) => u.user_external_id ?? u.user_id, { id: "user", header: "User", cell: (c) => userLabel(c.row.original), size: 140 }),
      col.accessor("churn_probability", {
        header: "Churn probability",
        cell: (c) => (
          <span className="prob"><span className={`prob__bar prob__bar--${riskLevel(c.getValue())}`} style={{ width: `${c.getValue() * 100}%` }} />{fmtPercent(c.getValue(), 0)}</span>
        ),
        sortDescFirst: true,
        size: 130,
      }),
      col.accessor((u) => u.state ?? "", { id: "state", header: "State", size: 80 }),
      col.accessor((u) => u.days_until_churn ?? Number.POSITIVE_INFINITY, {
        id: "days_until_churn", header: "Days until churn", size: 90,
        cell: (c) => (c.row.original.days_until_churn == null ? "–" : c.row.original.days_until_churn),
      }),
      col.accessor((u) => factorLabel(mainFactor(u)), { id: "main_factor", header: "Main factor", size: 130 }),
      ...factorKeys.map((f) =>
        col.accessor((u) => u.contrib[f] ?? 0, {
          id: `factor:${f}`,
          header: factorLabel(f),
          sortDescFirst: true,
          size: 96,
          cell: (c) => (c.getValue() ? c.getValue().toFixed(2) : ""),
        }),
      ),
      col.accessor("contactedAt", {
        id: "contacted", header: "Contacted", size: 100,
        cell: (c) => (c.getValue() ? <span className="badge badge--ok">{fmtDate(c.getValue())}</span> : ""),
      }),
    ],
    [factorKeys.join("|")], // eslint-disable-line react-hooks/exhaustive-deps
  );

  const table = useReactTable({
    data,
    columns,
    state: { sorting, rowSelection: selection },
    getRowId: (u) => u.user_id,
    onSortingChange: setSorting,
    onRowSelectionChange: setSelection,
    enableRowSelection: true,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });

  const scrollRef = useRef<HTMLDivElement>(null);
  const tableRows = table.getRowModel().rows;
  const virtualizer = useVirtualizer({
    count: tableRows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    initialRect: { width: 960, height: 380 },
  });
  // Before the scroll box has a size (first paint, or no layout at all) the virtualizer has no window: show
  // the first rows instead of none.
  const virtual = virtualizer.getVirtualItems();
  const items = virtual.length || !tableRows.length
    ? virtual
    : tableRows.slice(0, 30).map((_, index) => ({ index, start: index * ROW_HEIGHT, end: (index + 1) * ROW_HEIGHT }));
  const padTop = virtual.length ? virtual[0].start : 0;
  const padBottom = virtual.length ? virtualizer.getTotalSize() - virtual[virtual.length - 1].end : 0;

  const selectedIds = Object.keys(selection).filter((k) => selection[k]);
  const selectedUsers = users.filter((u) => selection[u.user_id]);
  const detail = detailId ? users.find((u) => u.user_id === detailId) : undefined;

  const heatmapOption = useMemo<ChartOption>(
    () => ({
      animation: false,
      grid: { left: 130, right: 16, top: 8, bottom: 56 },
      tooltip: {
        className: "pae-tooltip",
        formatter: (p: { data: [number, number, number] }) =>
          `${factorLabel(matrix.factors[p.data[1]])}, churn probability ${RISK_BINS[p.data[0]]}: <strong>${p.data[2]}</strong> users`,
      },
      xAxis: { type: "category", data: RISK_BINS, name: "churn probability", nameLocation: "middle", nameGap: 30, splitArea: { show: true } },
      yAxis: { type: "category", data: matrix.factors.map(factorLabel), splitArea: { show: true }, inverse: true },
      visualMap: { show: false, min: 0, max: Math.max(1, matrix.max), inRange: { color: ["#fff7ed", "#fb923c", "#b91c1c"] } },
      series: [{ type: "heatmap", data: matrix.cells, label: { show: true, fontSize: 11 }, emphasis: { itemStyle: { borderColor: "#111", borderWidth: 1 } } }],
    }),
    [matrix],
  );

  const select = (u: UserChurnRisk) => {
    setDetailId(u.user_id);
    onUserSelect(u.user_id);
  };

  const exportCsv = () => {
    const chosen = selectedUsers.length ? selectedUsers : data;
    download(`churn-${workspaceLabel}-${predictionDate ?? "latest"}.csv`, toCsv(chosen, contacted));
    setMessage(`Exported ${chosen.length} users to CSV.`);
  };

  const markContacted = async () => {
    if (!onMarkContacted || !selectedIds.length) return;
    setBusy(true);
    try {
      await onMarkContacted(selectedIds);
      setMessage(`Marked ${selectedIds.length} user${selectedIds.length === 1 ? "" : "s"} as contacted.`);
      setSelection({});
    } catch (exc) {
      setMessage(`Could not mark as contacted: ${(exc as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  const ok = resource.status === "ok";
  return (
    <Panel
      testId="churn-risk-matrix"
      title="Churn risk"
      state={ok && users.length === 0 ? "no_data" : resource.status}
      subtitle={ok ? <>{users.length.toLocaleString("en-US")} scored users{total && total > users.length ? ` (of ${total.toLocaleString("en-US")}; the riskiest shown)` : ""} · scored {fmtDate(predictionDate)}</> : undefined}
    >
      {!ok ? (
        <ViewState resource={resource} what="churn scores" />
      ) : users.length === 0 ? (
        <ViewState resource={{ status: "no_data", message: "no user was scored on the latest date" }} what="churn scores" />
      ) : (
        <div className="churn-layout">
          <div className="churn-main">
            <h3>Users by churn probability and main risk factor</h3>
            <EChart option={heatmapOption} height={Math.max(160, 44 + 30 * matrix.factors.length + 40)} testId="churn-heatmap"
              ariaLabel="Heatmap: number of users by churn probability decile and main risk factor"
              onReady={(chart) => chart.on("click", (p) => {
                const d = (p as { data?: [number, number, number] }).data;
                if (d) setCell({ bin: d[0], factor: matrixRef.current.factors[d[1]] });
              })} />
            <div className="toolbar" data-testid="churn-bulk-actions">
              {cell && (
                <span className="chip">
                  {factorLabel(cell.factor)} · {RISK_BINS[cell.bin]}
                  <button type="button" className="link" onClick={() => setCell(null)} aria-label="Clear filter">×</button>
                </span>
              )}
              <span>{selectedIds.length ? `${selectedIds.length} selected` : `${data.length.toLocaleString("en-US")} shown`}</span>
              <button type="button" onClick={exportCsv} data-testid="export-csv">Export CSV{selectedIds.length ? ` (${selectedIds.length})` : ""}</button>
              {onMarkContacted && (
                <button type="button" onClick={markContacted} disabled={!selectedIds.length || busy} data-testid="mark-contacted">
                  Mark as contacted{selectedIds.length ? ` (${selectedIds.length})` : ""}
                </button>
              )}
              {message && <span className="hint" role="status">{message}</span>}
            </div>
            <div className="table-scroll" ref={scrollRef} data-testid="churn-table">
              <table className="grid">
                <thead>
                  {table.getHeaderGroups().map((hg) => (
                    <tr key={hg.id}>
                      {hg.headers.map((h) => (
                        <th key={h.id} style={{ width: h.getSize() }}
                          aria-sort={h.column.getIsSorted() === "asc" ? "ascending" : h.column.getIsSorted() === "desc" ? "descending" : undefined}>
                          {h.column.getCanSort() && h.id !== "select" ? (
                            <button type="button" className="sort" onClick={h.column.getToggleSortingHandler()}>
                              {flexRender(h.column.columnDef.header, h.getContext())}
                              {{ asc: " ▲", desc: " ▼" }[h.column.getIsSorted() as string] ?? ""}
                            </button>
                          ) : (
                            flexRender(h.column.columnDef.header, h.getContext())
                          )}
                        </th>
                      ))}
                    </tr>
                  ))}
                </thead>
                <tbody>
                  {padTop > 0 && <tr style={{ height: padTop }} aria-hidden="true" />}
                  {items.map((vi) => {
                    const row = tableRows[vi.index];
                    return (
                      <tr key={row.id} data-user-id={row.id} className={row.id === detailId ? "is-active" : undefined}
                        style={{ height: ROW_HEIGHT }} onClick={() => select(row.original)} tabIndex={0}
                        onKeyDown={(e) => e.key === "Enter" && select(row.original)}>
                        {row.getVisibleCells().map((c) => <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>)}
                      </tr>
                    );
                  })}
                  {padBottom > 0 && <tr style={{ height: padBottom }} aria-hidden="true" />}
                </tbody>
              </table>
            </div>
          </div>
          {detail ? (
            <ChurnUserDetail user={detail} contact={contacted.get(detail.user_id)} onClose={() => setDetailId(null)} />
          ) : (
            <p className="churn-detail churn-detail--empty hint">Click a user for the probability, reasons, actions and days until churn. Click a heatmap cell to filter the list.</p>
          )}
        </div>
      )}
    </Panel>
  );
}
