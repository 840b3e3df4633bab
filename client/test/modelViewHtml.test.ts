import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { escapeHtml, type ModelView, renderHeader, renderPage, renderRows, rowKey, type ViewRow } from "../src/modelViewHtml";

const row = (name: string, type: string, o: Partial<ViewRow> = {}): ViewRow => ({
  name, type, input: "[2, 16, 64]", output: "[2, 16, 64]", params: 128, line: 3, mismatch: null, count: 1, children: [], ...o,
});

const norm = row("blocks.0.norm", "LayerNorm", { line: 9 });
const blocks = (i: number) => row(`blocks.${i}`, "Block", { params: 33216, line: 20, children: [norm] });
const run = row("blocks.0", "Block", { params: 33216, line: 20, count: 3, children: [norm], members: [0, 1, 2].map(blocks) });
const head = row("head", "Linear", { line: 21, input: "[2, 16, 64]", output: "—", mismatch: "self.head expects in_features=128 <but> 64" });
const rows = [row("blocks", "ModuleList", { input: "—", output: "—", children: [run] }), head];

const names = (html: string) => [...html.matchAll(/<td class="name"[^>]*>(?:<span[^>]*>[^<]*<\/span>)?([^<]*)</g)].map((m) => m[1]);

describe("renderRows", () => {
  it("shows a run of identical blocks as one `Block × 3` row, closed", () => {
    const html = renderRows(rows);
    assert.deepEqual(names(html), ["blocks", "blocks.0 … 2", "head"]);
    assert.match(html, /<td class="type">Block × 3<\/td>/);
    assert.match(html, /33,216 × 3/);
  });

  it("opens a run to its members, and a member to its layers", () => {
    const open = renderRows(rows, new Set([rowKey(run)]));
    assert.deepEqual(names(open), ["blocks", "blocks.0 … 2", "blocks.0", "blocks.1", "blocks.2", "head"]);
    const deeper = renderRows(rows, new Set([rowKey(run), rowKey(blocks(1), true)]));
    assert.deepEqual(names(deeper), ["blocks", "blocks.0 … 2", "blocks.0", "blocks.1", "blocks.0.norm", "blocks.2", "head"]);
  });

  it("closes a plain row when toggled", () => {
    assert.deepEqual(names(renderRows(rows, new Set([rowKey(rows[0])]))), ["blocks", "head"]);
  });

  it("highlights a mismatch row, says why, escapes it, and keeps each row's line for reveal", () => {
    const html = renderRows(rows);
    assert.match(html, /<tr class="layer mismatch" data-line="21" title="self.head expects in_features=128 &lt;but&gt; 64">/);
    assert.match(html, /<tr class="why" data-line="21">/);
    assert.ok(!html.includes("<but>"));
    assert.equal(renderRows([row("x", "Linear", { line: null })]).includes("data-line"), false);
  });
});

describe("renderHeader and the page", () => {
  const view: ModelView = {
    name: "Tower", line: 16, device: "meta", totalParams: 463882, paramBytes: 1855528, weights: "1.8 MiB", assumed: "B=17",
    input: "[2, 16]", output: "[2, 16, 10]", mismatches: 1, rows,
  };

  it("summarises the model and says it was probed on the meta device", () => {
    const h = renderHeader(view);
    assert.match(h, /<h1>Tower<\/h1>/);
    assert.match(h, /463,882 parameters \(1\.8 MiB of weights\)/);
    assert.match(h, /meta device: shapes only, no parameter memory/);
    assert.match(h, /1 shape mismatch \(highlighted\)/);
    assert.match(h, /made up: B=17/);
    assert.ok(!h.includes("assumed arguments"));
  });

  it("names the constructor arguments the probe assumed, escaped, and how to give the real ones", () => {
    const h = renderHeader({ ...view, assumedArgs: { dim: "64", kind: "'<x>'" } });
    assert.match(h, /Nothing in the workspace builds Tower: probed with assumed arguments <code>dim=64<\/code>, <code>kind=&#39;&lt;x&gt;&#39;<\/code>/);
    assert.match(h, /# shapelens: Tower\(\.\.\.\)/);
  });

  it("follows the theme through VS Code's CSS variables, never wraps shapes, and allows only its own script", () => {
    const page = renderPage("N0NCE", "vscode-resource:");
    assert.match(page, /var\(--vscode-editor-background\)/);
    assert.match(page, /white-space: nowrap/);
    assert.match(page, /width: max-content/);
    assert.match(page, /script-src 'nonce-N0NCE'/);
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});
