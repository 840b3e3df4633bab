// The environment check before the server starts: is this a Python the server runs on, and can
// it import torch? Says what is wrong in plain words (once per problem) and never installs
// anything; while torch is missing it watches that environment's site-packages, so a manual
// install is noticed without a restart.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as vscode from "vscode";

import { CHECK_SCRIPT, type EnvironmentReport, isTorchDistInfo, MIN_PYTHON, parseCheckOutput, pythonTooOld, torchMissingMessage } from "./environment";
import type { Phase } from "./status";

export interface CheckHost {
  log: vscode.LogOutputChannel;
  setPhase(phase: Phase, detail?: string): void;
  /** The working directory for the check (a private, empty folder). */
  cwd(): string;
  trusted(): boolean;
  pickInterpreter(): Promise<void>;
  /** Check again in `ms` (the controller decides whether that is still needed). */
  recheck(reason: string, ms: number): void;
}

export class EnvironmentCheck implements vscode.Disposable {
  private watcher: fs.FSWatcher | undefined;
  private lastMessage: string | undefined;

  constructor(private readonly host: CheckHost) {}

  /** Is torch importable there (and is it a Python the server runs on)? Returns undefined when the
   *  server cannot start, after saying why in plain words. Never installs anything. */
  async check(python: string): Promise<EnvironmentReport | undefined> {
    let stdout: string;
    try {
      stdout = await run(python, ["-c", CHECK_SCRIPT], this.host.cwd(), 30000);
    } catch (err) {
      const notFound = (err as NodeJS.ErrnoException).code === "ENOENT";
      const msg = notFound
        ? `shapelens: the Python interpreter ${python} was not found. Choose your project's interpreter (one with torch).`
        : `shapelens: could not run ${python}: ${errorText(err)}`;
      this.host.log.error(msg);
      this.host.setPhase("stopped", msg);
      this.tell(msg, "error");
      return undefined;
    }
    const report = parseCheckOutput(stdout);
    if (!report) {
      const msg = `shapelens: ${python} did not answer the environment check (output: ${stdout.slice(0, 200)})`;
      this.host.log.error(msg);
      this.host.setPhase("stopped", msg);
      return undefined;
    }
    this.host.log.info(`environment: Python ${report.python} at ${report.executable}; torch ${report.torch ? "importable" : "NOT importable"}`);
    if (pythonTooOld(report.python)) {
      const msg = `shapelens needs Python ${MIN_PYTHON.join(".")} or newer; ${python} is Python ${report.python}. Choose another interpreter.`;
      this.host.setPhase("stopped", msg);
      this.tell(msg, "error");
      return undefined;
    }
    // In Restricted Mode nothing is probed, so the server runs without torch.
    if (!report.torch && this.host.trusted()) {
      const { message, command } = torchMissingMessage(python, report);
      this.host.log.warn(message);
      this.host.setPhase("needsTorch", message);
      this.watch(report.purelib);
      this.tell(message, "warning", command);
      return undefined;
    }
    this.lastMessage = undefined;
    return report;
  }

  /** One notification per distinct problem (a re-check that finds the same thing stays quiet). */
  private tell(message: string, level: "warning" | "error", command?: string): void {
    if (this.lastMessage === message) return;
    this.lastMessage = message;
    const show = level === "error" ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    const buttons = [...(command ? ["Copy Command"] : []), "Select Interpreter…", "Show Output"];
    void show(message, ...buttons).then(async (choice) => {
      if (choice === "Copy Command" && command) {
        await vscode.env.clipboard.writeText(command);
        void vscode.window.showInformationMessage(`Copied: ${command}`);
      } else if (choice === "Select Interpreter…") {
        await this.host.pickInterpreter();
      } else if (choice === "Show Output") {
        this.host.log.show(true);
      }
    });
  }

  private watch(purelib: string): void {
    if (!purelib) return;
    try {
      // pip writes torch's .dist-info last; each new event pushes the check back a little, so it
      // runs once the install has settled.
      this.watcher = fs.watch(purelib, (_event, name) => {
        if (name && isTorchDistInfo(String(name))) this.host.recheck(`${name} appeared in ${purelib}`, 3000);
      });
      this.watcher.on("error", () => this.stopWatching());
    } catch {
      // no such folder yet: the focus re-check still notices
    }
  }

  stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  dispose(): void {
    this.stopWatching();
  }
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
