// The Python extension's active environment (ms-python.python), when it is installed: the
// interpreter the user already chose for the project. Its changes are followed.

import * as vscode from "vscode";

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

export function pythonExtensionInstalled(): boolean {
  return vscode.extensions.getExtension("ms-python.python") !== undefined;
}

export class PythonExtension implements vscode.Disposable {
  private listener: vscode.Disposable | undefined;

  constructor(private readonly onChange: () => void, private readonly log: vscode.LogOutputChannel) {}

  async activeInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
    const ext = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
    if (!ext) return undefined;
    try {
      const api = ext.isActive ? ext.exports : await withTimeout(ext.activate(), 15000, "activating the Python extension");
      const envs = api?.environments;
      if (envs?.getActiveEnvironmentPath) {
        if (!this.listener && envs.onDidChangeActiveEnvironmentPath) {
          this.listener = envs.onDidChangeActiveEnvironmentPath(() => this.onChange());
        }
        const active = envs.getActiveEnvironmentPath(resource);
        const resolved = await envs.resolveEnvironment(active);
        return resolved?.executable?.uri?.fsPath ?? active?.path;
      }
      const exec = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
      return exec && exec.length === 1 ? exec[0] : undefined;
    } catch (err) {
      this.log.warn(`could not ask the Python extension for its environment: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  dispose(): void {
    this.listener?.dispose();
  }
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
