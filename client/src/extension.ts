// The shapelens VS Code extension: runs the server shipped in the extension (bundled/libs) with
// the user's interpreter, which needs only torch, and wires it to VS Code with
// vscode-languageclient. The decisions live in pure modules (interpreter, environment, launch,
// discovery, settings, status, modelViewHtml) that the unit tests cover.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions as LspServerOptions,
  State,
} from "vscode-languageclient/node";

import { EnvironmentCheck } from "./envCheck";
import type { EnvironmentReport } from "./environment";
import { describeSource, type InterpreterChoice, resolveInterpreter } from "./interpreter";
import { ClassContext } from "./classContext";
import { bundledPaths, serverLaunch } from "./launch";
import { ModelViewPanel } from "./modelView";
import type { ModelView } from "./modelViewHtml";
import { selectInterpreter } from "./picker";
import { DOCUMENT_SELECTOR } from "./selector";
import { PythonExtension, pythonExtensionInstalled } from "./pythonExtension";
import { classifyChange, type ClientSettings, readSettings, SECTION, type ServerOptions, toServerOptions } from "./settings";
import { countMismatches, logLevel, type Phase, renderStatus } from "./status";

const MODEL_VIEW_REQUEST = "shapelens/modelView";

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new Controller(context);
  context.subscriptions.push(controller);
  await controller.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stopClient();
}

class Controller implements vscode.Disposable {
  private readonly output: vscode.LogOutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly python: PythonExtension;
  private readonly modelView: ModelViewPanel;
  private client: LanguageClient | undefined;
  private settings: ClientSettings;
  private interpreter: InterpreterChoice | undefined;
  private env: EnvironmentReport | undefined;
  private phase: Phase = "starting";
  private detail: string | undefined;
  private stopping = false;
  private queue: Promise<void> = Promise.resolve();
  private readonly envCheck: EnvironmentCheck;
  private recheckTimer: NodeJS.Timeout | undefined;
  private readonly classContext: ClassContext;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel("shapelens", { log: true });
    this.statusItem = vscode.window.createStatusBarItem("shapelens.status", vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = "shapelens";
    this.statusItem.command = "shapelens.showOutput";
    this.settings = this.readSettings();
    this.python = new PythonExtension(() => {
      if (!this.settings.interpreter) void this.restart("the Python extension's environment changed");
    }, this.output);
    this.modelView = new ModelViewPanel((uri, pos, cls) => this.requestModelView(uri, pos, cls), this.output);
    this.classContext = new ClassContext(() => this.client, this.output);
    this.envCheck = new EnvironmentCheck({
      log: this.output,
      setPhase: (phase, detail) => this.setPhase(phase, detail),
      cwd: () => this.safeCwd(),
      trusted: () => this.trusted,
      pickInterpreter: () => this.pickInterpreter(),
      recheck: (reason, ms) => this.recheckSoon(reason, ms),
    });
    this.disposables.push(
      this.output,
      this.statusItem,
      this.python,
      this.modelView,
      this.classContext,
      this.envCheck,
      vscode.commands.registerCommand("shapelens.restartServer", () => this.restart("restart command")),
      vscode.commands.registerCommand("shapelens.showOutput", () => this.output.show(true)),
      vscode.commands.registerCommand("shapelens.showModel", () => this.showModel()),
      vscode.commands.registerCommand("shapelens.selectInterpreter", () => this.pickInterpreter()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.restart("workspace trusted")),
      vscode.languages.onDidChangeDiagnostics(() => this.render()),
      // A torch installed by hand in a terminal is noticed when the user comes back to the window.
      vscode.window.onDidChangeWindowState((s) => {
        if (s.focused) this.recheckSoon("the window regained focus", 0);
      }),
    );
    this.render();
    this.statusItem.show();
  }

  dispose(): void {
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

  /** While the environment is not usable (no torch, no such interpreter), checks it again. */
  private recheckSoon(reason: string, ms: number): void {
    if (this.phase !== "needsTorch" && !(this.phase === "stopped" && !this.client)) return;
    clearTimeout(this.recheckTimer);
    this.recheckTimer = setTimeout(() => {
      if (this.client) return;
      this.output.info(`checking the interpreter again (${reason})`);
      void this.enqueue(() => this.doStart());
    }, ms);
  }

  private async doStart(): Promise<void> {
    this.settings = this.readSettings();
    this.detail = undefined;
    this.env = undefined;
    this.envCheck.stopWatching();
    if (!this.settings.enable) {
      this.setPhase("disabled");
      return;
    }
    this.setPhase("starting");
    this.interpreter = await this.resolveInterpreter();
    const python = this.interpreter.command;
    this.output.info(`interpreter: ${python} (${describeSource(this.interpreter)}); workspace ${this.trusted ? "trusted" : "NOT trusted (Restricted Mode)"}`);

    const env = await this.envCheck.check(python);
    if (!env) return;
    this.env = env;

    const { libs } = bundledPaths(this.context.extensionPath);
    const launch = serverLaunch(python, this.settings.importStrategy, this.context.extensionPath,
      fs.existsSync(path.join(libs, "shapelens")), process.env);
    if (launch.note) this.output.warn(launch.note);
    this.output.info(`starting: ${python} ${launch.args.join(" ")} (import strategy ${launch.strategy})`);
    const serverOptions: LspServerOptions = {
      command: launch.command,
      args: launch.args,
      options: { cwd: this.safeCwd(), env: launch.env },
    };
    let initializeSent = 0;
    let firstDiagnostics = true;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [...DOCUMENT_SELECTOR],
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
        handleDiagnostics: (uri, diagnostics, next) => {
          if (firstDiagnostics) {
            firstDiagnostics = false;
            this.output.info(`first diagnostics ${Date.now() - initializeSent} ms after initialize (${path.basename(uri.fsPath)})`);
          }
          next(uri, diagnostics);
        },
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
    let workerReady = false;
    client.onDidChangeState((e) => {
      if (client !== this.client) return;
      if (e.newState === State.Starting) this.setPhase("starting");
      else if (e.newState === State.Stopped && !this.stopping) {
        this.setPhase("stopped", "The server process exited. See the shapelens output; run “shapelens: Restart Server” to start it again.");
      }
    });
    client.onNotification("shapelens/status", (params: unknown) => {
      if (client !== this.client) return;
      const p = (params ?? {}) as { worker?: { ready?: boolean } };
      if (p.worker?.ready) workerReady = true;
      this.onServerStatus(params, workerReady);
    });
    try {
      initializeSent = Date.now();
      await client.start();
      const info = client.initializeResult?.serverInfo;
      this.output.info(`server running: ${info?.name ?? "shapelens"} ${info?.version ?? ""} (initialize answered in ${Date.now() - initializeSent} ms)`.trim());
      // Until the worker says it is ready, it is importing torch.
      if (this.phase === "starting") this.setPhase(workerReady || !this.trusted ? "ready" : "warming", this.detail);
      else this.render();
      this.classContext.refresh(0);
    } catch (err) {
      this.output.error(`could not start the server: ${errorText(err)}`);
      this.setPhase("stopped", `Could not start the shapelens server with ${python}: ${errorText(err)}`);
    }
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

  /** A private, empty folder as the server's working directory, so no file of the workspace can
   *  shadow a module the server imports (even in Restricted Mode). */
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
    const fromExt = this.settings.interpreter || !this.trusted ? undefined : await this.python.activeInterpreter(folder?.uri);
    return resolveInterpreter({
      setting: cfg.get<string | null>("interpreter") ?? null,
      pythonExtension: fromExt,
      workspaceFolder: folder?.uri.scheme === "file" ? folder.uri.fsPath : null,
      homeDir: os.homedir(),
      env: process.env,
    });
  }

  private async pickInterpreter(): Promise<void> {
    const chosen = await selectInterpreter(this.env?.executable || this.interpreter?.command, pythonExtensionInstalled());
    // The setting change restarts the server; choosing the same one again re-checks it.
    if (chosen !== undefined && chosen === this.settings.interpreter) void this.restart("interpreter selected");
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
   *  starting | ready | probing | done | error | disabled | untrusted (server/shapelens/lsp/server.py). */
  private onServerStatus(params: unknown, workerReady: boolean): void {
    const p = (params ?? {}) as { state?: string; message?: string };
    const message = typeof p.message === "string" ? p.message : undefined;
    this.output.info(`status: ${p.state ?? "?"}${message ? ` — ${message}` : ""}`);
    switch (p.state) {
      case "starting":
        this.setPhase("warming", message);
        break;
      case "probing":
        this.setPhase(workerReady ? "probing" : "warming", workerReady ? message : this.detail);
        break;
      case "error":
        this.setPhase("workerError", message ?? "The probe worker failed.");
        break;
      case "disabled":
        this.setPhase("disabled", message);
        break;
      case "ready":
        if (this.phase === "probing") this.render();
        else this.setPhase("ready", message);
        break;
      default:
        this.setPhase("ready", message);
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
      serverVersion: this.client?.initializeResult?.serverInfo?.version,
    });
    this.statusItem.text = view.text;
    this.statusItem.tooltip = new vscode.MarkdownString(view.tooltip, true);
    this.statusItem.command = this.phase === "needsTorch" || this.phase === "stopped" ? "shapelens.selectInterpreter" : "shapelens.showOutput";
    this.statusItem.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  // --- model view --------------------------------------------------------------------------------

  private async requestModelView(uri: vscode.Uri, position: vscode.Position, className: string | undefined): Promise<ModelView | null> {
    const client = this.client;
    if (!client?.isRunning()) return null;
    return client.sendRequest<ModelView | null>(MODEL_VIEW_REQUEST, {
      textDocument: { uri: client.code2ProtocolConverter.asUri(uri) },
      position: { line: position.line, character: position.character },
      ...(className ? { className } : {}),
    });
  }

  private async showModel(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.languageId !== "python") {
      void vscode.window.showInformationMessage("shapelens: put the cursor in a Python file, inside an nn.Module class.");
      return;
    }
    if (!this.client?.isRunning()) {
      void vscode.window.showWarningMessage("shapelens: the server is not running.", "Show Output").then((c) => c && this.output.show(true));
      return;
    }
    // The first probe of a file may still be running (the worker imports torch on a cold start).
    const end = Date.now() + (this.phase === "warming" || this.phase === "probing" || this.phase === "starting" ? 60000 : 3000);
    try {
      for (;;) {
        if (await this.modelView.show(editor)) return;
        if (Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (err) {
      void vscode.window.showErrorMessage(`shapelens: the model view failed: ${errorText(err)}`);
      return;
    }
    void vscode.window.showInformationMessage("shapelens: no model here — put the cursor inside an nn.Module class that the file builds and calls.");
  }
}

// --- helpers ---------------------------------------------------------------------------------------

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

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
