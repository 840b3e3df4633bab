// "shapelens: Show Model": a webview beside the editor with the layer table of the nn.Module
// under the cursor, refreshed whenever the server publishes new results for that file and when
// the cursor moves into another class. Rows reveal their line; runs (`Block × 12`) expand.

import { randomBytes } from "node:crypto";
import * as vscode from "vscode";

import { type ModelView, renderHeader, renderPage, renderRows } from "./modelViewHtml";

export type ModelViewRequest = (
  uri: vscode.Uri,
  position: vscode.Position,
  className: string | undefined,
) => Promise<ModelView | null>;

export class ModelViewPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private uri: vscode.Uri | undefined;
  private className: string | undefined;
  private view: ModelView | null = null;
  private readonly toggled = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ready = false;

  constructor(private readonly request: ModelViewRequest, private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(
      vscode.languages.onDidChangeDiagnostics((e) => {
        if (this.uri && e.uris.some((u) => u.toString() === this.uri?.toString())) this.schedule(0);
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (this.panel && e.textEditor.document.uri.toString() === this.uri?.toString()) this.schedule(150);
      }),
    );
  }

  /** Opens (or re-targets) the view for the class under the editor's cursor. Returns false when
   *  the server knows no probed class there. */
  async show(editor: vscode.TextEditor): Promise<boolean> {
    const view = await this.request(editor.document.uri, editor.selection.active, undefined);
    if (!view) return false;
    if (this.uri?.toString() !== editor.document.uri.toString() || this.className !== view.name) this.toggled.clear();
    this.uri = editor.document.uri;
    this.className = view.name;
    this.view = view;
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        "shapelens.modelView",
        `Model: ${view.name}`,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [] },
      );
      this.ready = false;
      const nonce = randomBytes(16).toString("base64");
      this.panel.webview.html = renderPage(nonce, this.panel.webview.cspSource);
      this.panel.webview.onDidReceiveMessage((m: { type?: string; key?: string; line?: number }) => this.onMessage(m), null, this.disposables);
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.uri = undefined;
        this.className = undefined;
      }, null, this.disposables);
    } else {
      this.panel.title = `Model: ${view.name}`;
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.post();
    return true;
  }

  private onMessage(m: { type?: string; key?: string; line?: number }): void {
    if (m.type === "ready") {
      this.ready = true;
      this.post();
    } else if (m.type === "toggle" && typeof m.key === "string") {
      if (!this.toggled.delete(m.key)) this.toggled.add(m.key);
      this.post();
    } else if (m.type === "reveal" && typeof m.line === "number") {
      void this.reveal(m.line);
    }
  }

  private async reveal(line: number): Promise<void> {
    if (!this.uri) return;
    const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === this.uri?.toString());
    const doc = visible?.document ?? (await vscode.workspace.openTextDocument(this.uri));
    const at = new vscode.Position(Math.min(line, doc.lineCount - 1), 0);
    const text = doc.lineAt(at.line);
    const start = at.with(undefined, text.firstNonWhitespaceCharacterIndex);
    const editor = await vscode.window.showTextDocument(doc, {
      viewColumn: visible?.viewColumn ?? vscode.ViewColumn.One,
      selection: new vscode.Range(start, start),
      preserveFocus: false,
    });
    editor.revealRange(text.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private schedule(ms: number): void {
    if (!this.panel) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), ms);
  }

  /** Asks the server again: the class under the cursor if the cursor is in one, else the same class. */
  private async refresh(): Promise<void> {
    if (!this.panel || !this.uri) return;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === this.uri?.toString());
    const position = editor?.selection.active ?? new vscode.Position(0, 0);
    try {
      const view = await this.request(this.uri, position, this.className);
      if (!this.panel) return;
      if (view && view.name !== this.className) this.toggled.clear();
      this.view = view;
      if (view) {
        this.className = view.name;
        this.panel.title = `Model: ${view.name}`;
      }
      this.post();
    } catch (err) {
      this.log.warn(`model view: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private post(): void {
    if (!this.panel || !this.ready) return;
    const view = this.view;
    void this.panel.webview.postMessage({
      type: "update",
      header: view ? renderHeader(view) : "",
      rows: view ? renderRows(view.rows, this.toggled) : "",
      empty: view ? "" : `No probed nn.Module ${this.className ? `named ${this.className} ` : ""}in this file right now.`,
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
