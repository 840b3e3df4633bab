// The shapelens VS Code extension: starts `python -m shapelens serve` (stdio) in the right
// interpreter and wires it to VS Code with vscode-languageclient. The decisions live in pure
// modules (interpreter.ts, settings.ts, status.ts) that the unit tests cover.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions as LspServerOptions,
  State,
} from "vscode-languageclient/node";

import {
  CHECK_SCRIPT,
  describeSource,
  type EnvironmentReport,
  formatCommand,
  type InterpreterChoice,
  isShapelensPyproject,
  MIN_PYTHON,
  parseCheckOutput,
  planInstall,
  pythonTooOld,
  resolveInterpreter,
} from "./interpreter";
import { classifyChange, type ClientSettings, readSettings, SECTION, type ServerOptions, toServerOptions } from "./settings";
import { countMismatches, logLevel, type Phase, renderStatus } from "./status";

const SERVER_SUMMARY_COMMAND = "shapelens.modelSummary";
const SUMMARY_SCHEME = "shapelens-summary";

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new Controller(context);
  context.subscriptions.push(controller);
  await controller.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stopClient();
}

/** Holds the markdown the "Show Model Summary" command renders in the side preview. */
class SummaryDocuments implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  set(uri: vscode.Uri, markdown: string): void {
    this.docs.set(uri.toString(), markdown);
    this.changed.fire(uri);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? "";
  }

  dispose(): void {
    this.changed.dispose();
  }
}

class Controller implements vscode.Disposable {
  private readonly output: vscode.LogOutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly summaries = new SummaryDocuments();
  private readonly disposables: vscode.Disposable[] = [];
  private client: LanguageClient | undefined;
  private settings: ClientSettings;
  private interpreter: InterpreterChoice | undefined;
  private env: EnvironmentReport | undefined;
  private missing: string[] = [];
  private phase: Phase = "starting";
  private detail: string | undefined;
  private stopping = false;
  private queue: Promise<void> = Promise.resolve();
  private pythonEnvListener: vscode.Disposable | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel("shapelens", { log: true });
    this.statusItem = vscode.window.createStatusBarItem("shapelens.status", vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = "shapelens";
    this.statusItem.command = "shapelens.showOutput";
    this.settings = this.readSettings();
    this.disposables.push(
      this.output,
      this.statusItem,
      this.summaries,
      vscode.workspace.registerTextDocumentContentProvider(SUMMARY_SCHEME, this.summaries),
      vscode.commands.registerCommand("shapelens.restartServer", () => this.restart("restart command")),
      vscode.commands.registerCommand("shapelens.showOutput", () => this.output.show(true)),
      vscode.commands.registerCommand("shapelens.showModelSummary", () => this.showModelSummary()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.restart("workspace trusted")),
      vscode.languages.onDidChangeDiagnostics(() => this.render()),
    );
    this.render();
    this.statusItem.show();
  }

  dispose(): void {
    this.pythonEnvListener?.dispose();
    void this.stopClient();
    for (const d of this.disposables) d.dispose();
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  restart(reason: string): Promise<void> {
    return this.enqueue(async () => {
      this.output.info(`restarting the server (${reason})`);
      await this.doStop();
      await this.doStart();
    });
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(job).catch((err: unknown) => {
      this.output.error(`shapelens: ${errorText(err)}`);
    });
    return this.queue;
  }

  async stopClient(): Promise<void> {
    await this.enqueue(() => this.doStop());
  }

  private get trusted(): boolean {
    return vscode.workspace.isTrusted;
  }

  private readSettings(): ClientSettings {
    const cfg = vscode.workspace.getConfiguration(SECTION, vscode.workspace.workspaceFolders?.[0]?.uri);
    return readSettings((key) => cfg.get(key));
  }

  private serverOptions(): ServerOptions {
    return toServerOptions(this.settings, this.trusted, this.env?.executable || this.interpreter?.command || null);
  }

  private async doStart(): Promise<void> {
    this.settings = this.readSettings();
    this.detail = undefined;
    this.missing = [];
    this.env = undefined;
    if (!this.settings.enable) {
      this.setPhase("disabled");
      return;
    }
    this.setPhase("starting");
    this.interpreter = await this.resolveInterpreter();
    const python = this.interpreter.command;
    this.output.info(`interpreter: ${python} (${describeSource(this.interpreter)}); workspace ${this.trusted ? "trusted" : "NOT trusted (Restricted Mode)"}`);

    const env = await this.checkEnvironment(python);
    if (!env) return;
    this.env = env;

    const cwd = this.safeCwd();
    const serverOptions: LspServerOptions = {
      command: python,
      args: ["-m", "shapelens", "serve"],
      options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file", language: "python" }],
      outputChannel: this.output,
      traceOutputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: () => this.serverOptions(),
      initializationFailedHandler: (err) => {
        this.output.error(`the server failed to initialize: ${errorText(err)}`);
        this.setPhase("stopped", `The server failed to initialize: ${errorText(err)}`);
        return false;
      },
      stdioOptions: {
        stdout: (input, channel) => forwardLines(input, channel),
        stderr: (input, channel) => forwardLines(input, channel),
      },
      middleware: {
        workspace: {
          // The server may pull its section instead of reading initializationOptions: answer
          // with the same values, including `trusted`, which is not a user setting.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            const values = Array.isArray(result) ? result : [];
            const ours = this.serverOptions() as unknown as Record<string, unknown>;
            return params.items.map((item, i) => {
              if (item.section === SECTION) return ours;
              if (item.section?.startsWith(`${SECTION}.`)) return ours[item.section.slice(SECTION.length + 1)] ?? null;
              return values[i];
            });
          },
        },
      },
      markdown: { isTrusted: false, supportHtml: false },
    };

    const client = new LanguageClient("shapelens", "shapelens", serverOptions, clientOptions);
    this.client = client;
    this.stopping = false;
    client.onDidChangeState((e) => {
      if (client !== this.client) return;
      if (e.newState === State.Starting) this.setPhase("starting");
      else if (e.newState === State.Running && (this.phase === "starting" || this.phase === "stopped")) {
        this.setPhase(this.missingTorchPhase(), this.detail);
      }
      else if (e.newState === State.Stopped && !this.stopping) {
        this.setPhase("stopped", "The server process exited. See the shapelens output; run “shapelens: Restart Server” to start it again.");
      }
    });
    client.onNotification("shapelens/status", (params: unknown) => this.onServerStatus(params));
    try {
      await client.start();
      const info = client.initializeResult?.serverInfo;
      this.output.info(`server running: ${info?.name ?? "shapelens"} ${info?.version ?? ""}`.trim());
      // The server may already have said more (probing, a worker error) than "running".
      if (this.phase === "starting") this.setPhase(this.missingTorchPhase(), this.detail);
      else this.render();
    } catch (err) {
      this.output.error(`could not start the server: ${errorText(err)}`);
      this.setPhase("stopped", `Could not start \`${python} -m shapelens serve\`: ${errorText(err)}`);
    }
  }

  private missingTorchPhase(): Phase {
    return this.missing.includes("torch") && this.trusted ? "workerError" : "ready";
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      if (client.needsStop()) await client.stop(5000);
    } catch (err) {
      this.output.warn(`stopping the server: ${errorText(err)}`);
    }
    try {
      await client.dispose(2000);
    } catch {
      // already gone
    }
  }

  /** A private, empty folder as the server's working directory: `python -m` puts the working
   *  directory first on sys.path, so starting in the workspace would let a file there named
   *  like a module the server imports run as code (even in Restricted Mode). */
  private safeCwd(): string {
    const dir = this.context.globalStorageUri?.fsPath || path.join(os.tmpdir(), `shapelens-${process.pid}`);
    try {
      fs.mkdirSync(dir, { recursive: true });
      return dir;
    } catch {
      return this.context.extensionPath;
    }
  }

  // --- interpreter -----------------------------------------------------------------------------

  private async resolveInterpreter(): Promise<InterpreterChoice> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const cfg = vscode.workspace.getConfiguration(SECTION, folder?.uri);
    // In Restricted Mode VS Code ignores the workspace's value of shapelens.interpreter (it is in
    // restrictedConfigurations), and the Python extension's choice can come from workspace
    // settings too, so it is not asked then.
    const fromExt = this.settings.interpreter || !this.trusted ? undefined : await this.pythonExtensionInterpreter(folder?.uri);
    return resolveInterpreter({
      setting: cfg.get<string | null>("interpreter") ?? null,
      pythonExtension: fromExt,
      workspaceFolder: folder?.uri.scheme === "file" ? folder.uri.fsPath : null,
      homeDir: os.homedir(),
      env: process.env,
    });
  }

  private async pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
    const ext = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
    if (!ext) return undefined;
    try {
      const api = ext.isActive ? ext.exports : await withTimeout(ext.activate(), 15000, "activating the Python extension");
      const envs = api?.environments;
      if (envs?.getActiveEnvironmentPath) {
        if (!this.pythonEnvListener && envs.onDidChangeActiveEnvironmentPath) {
          this.pythonEnvListener = envs.onDidChangeActiveEnvironmentPath(() => {
            if (this.interpreter?.source === "python-extension" || (this.interpreter?.source === "default" && !this.settings.interpreter)) {
              void this.restart("the Python extension's environment changed");
            }
          });
        }
        const active = envs.getActiveEnvironmentPath(resource);
        const resolved = await envs.resolveEnvironment(active);
        return resolved?.executable?.uri?.fsPath ?? active?.path;
      }
      const exec = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
      return exec && exec.length === 1 ? exec[0] : undefined;
    } catch (err) {
      this.output.warn(`could not ask the Python extension for its environment: ${errorText(err)}`);
      return undefined;
    }
  }

  /** Runs the environment check; on a missing package shows what to install (with a button that
   *  installs it). Returns undefined when the server cannot start. */
  private async checkEnvironment(python: string): Promise<EnvironmentReport | undefined> {
    let stdout: string;
    try {
      stdout = await run(python, ["-c", CHECK_SCRIPT], this.safeCwd(), 30000);
    } catch (err) {
      const notFound = (err as NodeJS.ErrnoException).code === "ENOENT";
      const msg = notFound
        ? `shapelens: the Python interpreter \`${python}\` was not found. Set "shapelens.interpreter" to a Python ${MIN_PYTHON.join(".")}+ that has shapelens and torch installed.`
        : `shapelens: could not run \`${python}\`: ${errorText(err)}`;
      this.output.error(msg);
      this.setPhase("stopped", msg);
      void this.offerSettings(msg);
      return undefined;
    }
    const report = parseCheckOutput(stdout);
    if (!report) {
      const msg = `shapelens: \`${python}\` did not answer the environment check (output: ${stdout.slice(0, 200)})`;
      this.output.error(msg);
      this.setPhase("stopped", msg);
      return undefined;
    }
    this.output.info(`environment: Python ${report.python} at ${report.executable}; shapelens ${report.shapelens ? "found" : "MISSING"}, torch ${report.torch ? "found" : "MISSING"}`);
    if (pythonTooOld(report.python)) {
      const msg = `shapelens needs Python ${MIN_PYTHON.join(".")} or newer; ${python} is Python ${report.python}. Point "shapelens.interpreter" at a newer interpreter.`;
      this.setPhase("stopped", msg);
      void this.offerSettings(msg);
      return undefined;
    }
    const plan = planInstall(python, report, { devCheckout: this.trusted ? this.devCheckout() : null });
    this.missing = plan.missing;
    if (plan.missing.length > 0) {
      this.output.warn(plan.message);
      void this.offerInstall(python, plan.pipArgs, plan.label, plan.message, plan.canStart);
    }
    if (!plan.canStart) {
      this.setPhase("missing", plan.message);
      return undefined;
    }
    if (plan.missing.length > 0) this.detail = plan.message;
    return report;
  }

  /** A workspace folder that is shapelens's own source checkout, if any. */
  private devCheckout(): string | null {
    for (const f of vscode.workspace.workspaceFolders ?? []) {
      if (f.uri.scheme !== "file") continue;
      try {
        const text = fs.readFileSync(path.join(f.uri.fsPath, "pyproject.toml"), "utf8");
        if (isShapelensPyproject(text)) return f.uri.fsPath;
      } catch {
        // no pyproject.toml
      }
    }
    return null;
  }

  private async offerInstall(python: string, pipArgs: string[], install: string, message: string, canStart: boolean): Promise<void> {
    const show = canStart ? vscode.window.showWarningMessage : vscode.window.showErrorMessage;
    const choice = await show(message, install, "Choose Interpreter…", "Show Output");
    if (choice === install) {
      await this.runInstall(python, pipArgs);
    } else if (choice === "Choose Interpreter…") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "shapelens.interpreter");
    } else if (choice === "Show Output") {
      this.output.show(true);
    }
  }

  /** Runs `<python> -m pip install ...` as a task (its terminal keeps pip's output, and the exit
   *  code is known); restarts the server when it succeeds. */
  private async runInstall(python: string, pipArgs: string[]): Promise<void> {
    this.output.info(`running: ${formatCommand([python, ...pipArgs])}`);
    const folder = vscode.workspace.workspaceFolders?.[0];
    const task = new vscode.Task(
      { type: "shapelens", action: "install" },
      folder ?? vscode.TaskScope.Workspace,
      `pip ${pipArgs.slice(2).join(" ")}`,
      "shapelens",
      new vscode.ProcessExecution(python, pipArgs, { cwd: this.safeCwd() }),
    );
    task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, panel: vscode.TaskPanelKind.Dedicated, clear: true, focus: false };
    // Listen before starting: a pip that fails at once can end before executeTask resolves.
    const sub = vscode.tasks.onDidEndTaskProcess((e) => {
      const def = e.execution.task.definition;
      if (def.type !== "shapelens" || def.action !== "install" || e.execution.task.name !== task.name) return;
      sub.dispose();
      if (e.exitCode === 0) {
        this.output.info("install finished; restarting the server");
        void this.restart("packages installed");
      } else {
        this.output.error(`install failed (exit code ${e.exitCode ?? "?"})`);
        void vscode.window.showErrorMessage(
          `shapelens: \`${formatCommand([python, ...pipArgs])}\` failed (exit code ${e.exitCode ?? "?"}); see its terminal.`,
        );
      }
    });
    try {
      await vscode.tasks.executeTask(task);
    } catch (err) {
      sub.dispose();
      void vscode.window.showErrorMessage(`shapelens: could not start the install (${errorText(err)}). Run it yourself: ${formatCommand([python, ...pipArgs])}`);
      return;
    }
    this.disposables.push(sub);
  }

  private async offerSettings(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", "shapelens.interpreter");
    else if (choice === "Show Output") this.output.show(true);
  }

  // --- settings ----------------------------------------------------------------------------------

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration(SECTION)) return;
    const before = this.settings;
    const after = this.readSettings();
    const action = classifyChange(before, after);
    this.output.info(`settings changed: ${action}`);
    switch (action) {
      case "none":
        this.settings = after;
        return;
      case "notify":
        this.settings = after;
        if (this.client?.isRunning()) {
          void this.client
            .sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: this.serverOptions() } })
            .catch((err: unknown) => this.output.warn(`sending settings: ${errorText(err)}`));
        }
        return;
      case "stop":
        this.settings = after;
        void this.enqueue(async () => {
          await this.doStop();
          this.setPhase("disabled");
        });
        return;
      case "start":
      case "restart":
        void this.restart(`setting changed: ${action}`);
        return;
    }
  }

  // --- status ------------------------------------------------------------------------------------

  /** The server's `shapelens/status` notification: {state, message, worker}; states are
   *  ready | probing | done | error | disabled | untrusted (server/shapelens/lsp/server.py). */
  private onServerStatus(params: unknown): void {
    const p = (params ?? {}) as { state?: string; message?: string };
    const message = typeof p.message === "string" ? p.message : undefined;
    this.output.info(`status: ${p.state ?? "?"}${message ? ` — ${message}` : ""}`);
    switch (p.state) {
      case "probing":
        this.setPhase("probing", message);
        break;
      case "error":
        this.setPhase("workerError", message ?? "The probe worker failed.");
        break;
      case "disabled":
        this.setPhase("disabled", message);
        break;
      case "ready":
        // The worker came up; a probe that is under way still is.
        if (this.phase === "probing") this.render();
        else this.setPhase(this.missingTorchPhase(), message);
        break;
      case "done":
      case "untrusted":
      default:
        this.setPhase(this.missingTorchPhase(), message);
        break;
    }
  }

  private setPhase(phase: Phase, detail?: string): void {
    this.phase = phase;
    this.detail = detail ?? (phase === "ready" ? this.detail : undefined);
    this.render();
  }

  private render(): void {
    const perFile = vscode.languages.getDiagnostics().map(([, diags]) => diags);
    const { mismatches, files } = countMismatches(perFile);
    const view = renderStatus({
      phase: this.phase,
      mismatches,
      files,
      trusted: this.trusted,
      interpreter: this.env?.executable || this.interpreter?.command,
      interpreterSource: this.interpreter ? describeSource(this.interpreter) : undefined,
      detail: this.detail,
      missing: this.missing,
      serverVersion: this.client?.initializeResult?.serverInfo?.version,
    });
    this.statusItem.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    this.statusItem.tooltip = tooltip;
    this.statusItem.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  // --- model summary -----------------------------------------------------------------------------

  private async showModelSummary(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.languageId !== "python") {
      void vscode.window.showInformationMessage("shapelens: put the cursor in a Python file, inside an nn.Module class.");
      return;
    }
    const client = this.client;
    if (!client?.isRunning()) {
      void vscode.window.showWarningMessage("shapelens: the server is not running.", "Show Output").then((c) => c && this.output.show(true));
      return;
    }
    const doc = editor.document;
    const pos = editor.selection.active;
    let markdown: unknown;
    try {
      markdown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_SUMMARY_COMMAND,
        arguments: [client.code2ProtocolConverter.asUri(doc.uri), { line: pos.line, character: pos.character }],
      });
    } catch (err) {
      void vscode.window.showErrorMessage(`shapelens: model summary failed: ${errorText(err)}`);
      return;
    }
    if (typeof markdown !== "string" || markdown.trim() === "") {
      void vscode.window.showInformationMessage("shapelens: no model summary here — put the cursor inside an nn.Module class.");
      return;
    }
    const base = path.basename(doc.uri.path).replace(/\.py$/, "");
    const uri = vscode.Uri.from({ scheme: SUMMARY_SCHEME, path: `/${base} model summary.md`, query: doc.uri.toString() });
    this.summaries.set(uri, markdown);
    await vscode.commands.executeCommand("markdown.showPreviewToSide", uri);
  }
}

// --- helpers ---------------------------------------------------------------------------------------

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
    resolveEnvironment(env: { id: string; path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand: string[] | undefined };
  };
}

function forwardLines(input: NodeJS.ReadableStream, channel: vscode.LogOutputChannel): void {
  let buffer = "";
  input.setEncoding?.("utf8");
  input.on("data", (chunk: string | Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line.trim() !== "") channel[logLevel(line)](line);
    }
  });
  input.on("end", () => {
    if (buffer.trim() !== "") channel[logLevel(buffer)](buffer);
    buffer = "";
  });
}

function run(command: string, args: string[], cwd: string, timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout, windowsHide: true, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string };
        if (stderr) e.message = `${e.message}\n${stderr}`;
        reject(e);
      } else {
        resolve(stdout);
      }
    });
  });
}

function withTimeout<T>(p: Thenable<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    Promise.resolve(p).then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
