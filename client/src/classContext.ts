// The `shapelens.inClass` context key: true while the cursor is inside a class definition, so the
// editor context menu offers "shapelens: Show Model" only there. The class ranges come from the
// server (`shapelens/classRanges`, the document as it is now), fetched when the active editor
// or its text changes; cursor moves are answered from that cache.

import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

const CLASS_RANGES_REQUEST = "shapelens/classRanges";
const CONTEXT_KEY = "shapelens.inClass";

interface ClassRange {
  name: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
}

export class ClassContext implements vscode.Disposable {
  private readonly ranges = new Map<string, ClassRange[]>();
  private readonly disposables: vscode.Disposable[];
  private timer: NodeJS.Timeout | undefined;
  private value = false;

  constructor(private readonly client: () => LanguageClient | undefined, private readonly log: vscode.LogOutputChannel) {
    this.disposables = [
      vscode.window.onDidChangeActiveTextEditor(() => this.refresh(0)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.update(e.textEditor)),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document === vscode.window.activeTextEditor?.document) this.refresh(300);
      }),
      vscode.workspace.onDidCloseTextDocument((d) => this.ranges.delete(d.uri.toString())),
    ];
  }

  refresh(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fetch(), ms);
  }

  private async fetch(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = this.client();
    if (!editor || editor.document.languageId !== "python" || !client?.isRunning()) return this.set(false);
    try {
      const ranges = await client.sendRequest<ClassRange[]>(CLASS_RANGES_REQUEST, {
        textDocument: { uri: client.code2ProtocolConverter.asUri(editor.document.uri) },
      });
      this.ranges.set(editor.document.uri.toString(), Array.isArray(ranges) ? ranges : []);
    } catch (err) {
      this.log.debug(`class ranges: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.update(editor);
  }

  private update(editor: vscode.TextEditor): void {
    if (editor !== vscode.window.activeTextEditor) return;
    const line = editor.selection.active.line;
    const known = this.ranges.get(editor.document.uri.toString()) ?? [];
    this.set(known.some((c) => c.range.start.line <= line && line <= c.range.end.line));
  }

  private set(value: boolean): void {
    if (value === this.value) return;
    this.value = value;
    void vscode.commands.executeCommand("setContext", CONTEXT_KEY, value);
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
