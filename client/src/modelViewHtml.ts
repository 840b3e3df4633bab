// The model view's HTML: the layer table the server's `shapelens/modelView` request returns,
// as rows of a webview table. Pure (strings in, strings out), so the unit tests check it.

export interface ViewRow {
  name: string;
  type: string;
  input: string;
  output: string;
  params: number;
  line: number | null;
  mismatch: string | null;
  /** > 1: a run of look-alike siblings (`Block × 12`), `members` lists them all. */
  count: number;
  children: ViewRow[];
  members?: ViewRow[];
}

export interface ModelView {
  name: string;
  line: number | null;
  device: string;
  totalParams: number;
  paramBytes: number;
  weights: string;
  assumed: string | null;
  /** Constructor arguments the probe assumed (nothing in the workspace builds the class); absent from older servers. */
  assumedArgs?: Record<string, string>;
  input: string;
  output: string;
  mismatches: number;
  rows: ViewRow[];
  version?: number | null;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/** A row's toggle key; `toggled` holds the keys whose open/closed state differs from the default
 *  (plain rows open, runs and their members closed). */
export function rowKey(row: ViewRow, member = false): string {
  return `${row.count > 1 ? "run" : member ? "member" : "row"}:${row.name}`;
}

function isOpen(row: ViewRow, member: boolean, toggled: ReadonlySet<string>): boolean {
  const byDefault = row.count <= 1 && !member;
  return toggled.has(rowKey(row, member)) ? !byDefault : byDefault;
}

function lastPart(name: string): string {
  return name.slice(name.lastIndexOf(".") + 1);
}

function runLabel(row: ViewRow): string {
  const members = row.members ?? [];
  const last = members[members.length - 1]?.name;
  return last ? `${row.name} … ${lastPart(last)}` : row.name;
}

export function renderRows(rows: ViewRow[], toggled: ReadonlySet<string> = new Set()): string {
  const out: string[] = [];
  const walk = (row: ViewRow, depth: number, member: boolean) => {
    const inner = row.count > 1 ? (row.members ?? []) : row.children;
    const open = inner.length > 0 && isOpen(row, member, toggled);
    const key = rowKey(row, member);
    const toggle = inner.length > 0
      ? `<span class="toggle" data-toggle="${escapeHtml(key)}" role="button" aria-expanded="${open}">${open ? "▾" : "▸"}</span>`
      : `<span class="toggle"></span>`;
    const cls = ["layer", row.mismatch ? "mismatch" : "", row.count > 1 ? "run" : ""].filter(Boolean).join(" ");
    const line = row.line === null ? "" : ` data-line="${row.line}"`;
    const title = row.mismatch ? ` title="${escapeHtml(row.mismatch)}"` : "";
    const name = row.count > 1 ? runLabel(row) : row.name;
    const type = row.count > 1 ? `${row.type} × ${row.count}` : row.type;
    const params = row.count > 1 ? `${row.params.toLocaleString("en-US")} × ${row.count}` : row.params.toLocaleString("en-US");
    out.push(
      `<tr class="${cls}"${line}${title}>` +
        `<td class="name" style="padding-left:${0.2 + depth * 1.1}em">${toggle}${escapeHtml(name)}</td>` +
        `<td class="type">${escapeHtml(type)}</td>` +
        `<td class="shape">${escapeHtml(row.input)}</td>` +
        `<td class="shape">${escapeHtml(row.output)}</td>` +
        `<td class="num">${params}</td></tr>`,
    );
    if (row.mismatch) {
      // The message wraps inside the table's width instead of widening it, and keeps its own line
      // breaks: a mismatch message has one line per fact (see .fit).
      out.push(`<tr class="why"${line}><td colspan="5" style="padding-left:${1.5 + depth * 1.1}em"><div class="fit">${escapeHtml(row.mismatch)}</div></td></tr>`);
    }
    if (open) for (const child of inner) walk(child, depth + 1, row.count > 1);
  };
  for (const row of rows) walk(row, 0, false);
  return out.join("\n");
}

export function renderHeader(view: ModelView): string {
  const facts = [
    `input <code>${escapeHtml(view.input)}</code> → output <code>${escapeHtml(view.output)}</code>`,
    `${view.totalParams.toLocaleString("en-US")} parameters (${escapeHtml(view.weights)} of weights)`,
    view.device === "meta"
      ? "probed on the meta device: shapes only, no parameter memory"
      : `probed on ${escapeHtml(view.device)}`,
  ];
  const problems = view.mismatches > 0
    ? `<p class="problems">${view.mismatches} shape mismatch${view.mismatches === 1 ? "" : "es"} (highlighted)</p>`
    : "";
  const assumed = view.assumed ? `<p class="assumed">Inputs the probe made up: ${escapeHtml(view.assumed)}</p>` : "";
  return `<h1>${escapeHtml(view.name)}</h1><p class="facts">${facts.join(" · ")}</p>${problems}${assumedArgs(view)}${assumed}`;
}

/** Says the shapes rest on made-up constructor arguments, and how to give the real ones. */
function assumedArgs(view: ModelView): string {
  const args = Object.entries(view.assumedArgs ?? {});
  if (args.length === 0) return "";
  const values = args.map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(v)}</code>`).join(", ");
  return `<p class="assumed">Nothing in the workspace builds ${escapeHtml(view.name)}: probed with assumed arguments ${values}. `
    + `Hint the real ones with <code># shapelens: ${escapeHtml(view.name)}(...)</code> on the class line.</p>`;
}

/** The webview's document: theme colours come from VS Code's CSS variables, so it follows the
 *  light/dark/high-contrast theme; the table grows to its content (shapes never wrap). */
export function renderPage(nonce: string, cspSource: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${nonce}">
body { color: var(--vscode-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); padding: 0 12px 24px; }
h1 { font-size: 1.3em; margin: 12px 0 4px; }
p { margin: 2px 0; color: var(--vscode-descriptionForeground); }
p.problems { color: var(--vscode-errorForeground); }
code, td.shape, td.num { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
.scroll { overflow-x: auto; margin-top: 10px; }
table { border-collapse: collapse; width: max-content; min-width: 100%; }
th, td { text-align: left; padding: 2px 10px 2px 4px; white-space: nowrap; }
th { border-bottom: 1px solid var(--vscode-panel-border, var(--vscode-editorWidget-border)); font-weight: 600; position: sticky; top: 0; background: var(--vscode-editor-background); }
td.num, th.num { text-align: right; }
tr.layer[data-line] { cursor: pointer; }
tr.layer:hover { background: var(--vscode-list-hoverBackground); }
tr.run td.type { font-weight: 600; }
tr.mismatch { background: var(--vscode-inputValidation-errorBackground, rgba(255, 0, 0, 0.15)); outline: 1px solid var(--vscode-inputValidation-errorBorder, transparent); }
tr.why td { color: var(--vscode-errorForeground); white-space: normal; font-size: 0.92em; padding-top: 0; }
.fit { width: 0; min-width: 100%; white-space: pre-line; }
.toggle { display: inline-block; width: 0.9em; cursor: pointer; user-select: none; color: var(--vscode-descriptionForeground); }
#empty { margin-top: 16px; color: var(--vscode-descriptionForeground); }
</style></head>
<body>
<div id="header"></div>
<div class="scroll"><table>
<thead><tr><th>layer</th><th>type</th><th>input</th><th>output</th><th class="num">params</th></tr></thead>
<tbody id="rows"></tbody></table></div>
<div id="empty"></div>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
window.addEventListener("message", (e) => {
  const m = e.data;
  if (m.type !== "update") return;
  document.getElementById("header").innerHTML = m.header;
  document.getElementById("rows").innerHTML = m.rows;
  document.getElementById("empty").textContent = m.empty || "";
});
document.addEventListener("click", (e) => {
  const toggle = e.target.closest("[data-toggle]");
  if (toggle) { vscode.postMessage({ type: "toggle", key: toggle.dataset.toggle }); return; }
  const row = e.target.closest("tr[data-line]");
  if (row) vscode.postMessage({ type: "reveal", line: Number(row.dataset.line) });
});
vscode.postMessage({ type: "ready" });
</script>
</body></html>`;
}
