// "shapelens: Select Interpreter": a quick pick of the Python environments found on this machine
// (discovery.ts) plus Browse…, writing the plain-string `shapelens.interpreter` setting.

import * as fs from "node:fs";
import * as os from "node:os";
import * as vscode from "vscode";

import { type Candidate, discoverInterpreters, type DiscoveryFs } from "./discovery";
import { SECTION } from "./settings";

const nodeFs: DiscoveryFs = {
  isFile: (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  },
  list: (p) => {
    try {
      return fs.readdirSync(p);
    } catch {
      return [];
    }
  },
  read: (p) => {
    try {
      return fs.readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  },
  real: (p) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return p;
    }
  },
};

export function discover(): Candidate[] {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file").map((f) => f.uri.fsPath);
  return discoverInterpreters({ workspaceFolders: folders, home: os.homedir(), env: process.env, fs: nodeFs });
}

type Item = vscode.QuickPickItem & { value?: string; browse?: boolean };

/** Returns the chosen interpreter (already saved to the setting), or undefined if dismissed. */
export async function selectInterpreter(current: string | undefined, pythonExtension: boolean): Promise<string | undefined> {
  const items: Item[] = discover().map((c) => ({
    label: c.label,
    description: c.path === current ? `${c.path} (current)` : c.path,
    value: c.path,
  }));
  if (pythonExtension) {
    items.unshift({ label: "$(python) Use the Python extension's environment", description: "follows its choice", value: "" });
  }
  items.push({ label: "$(folder-opened) Browse…", description: "choose a Python executable", browse: true });
  const picked = await vscode.window.showQuickPick(items, {
    title: "shapelens: Select Interpreter",
    placeHolder: "The Python environment of your project (it needs torch; shapelens brings the rest)",
    matchOnDescription: true,
  });
  if (!picked) return undefined;
  let value = picked.value;
  if (picked.browse) {
    const chosen = await vscode.window.showOpenDialog({
      title: "shapelens: Python interpreter",
      canSelectMany: false,
      canSelectFolders: false,
      openLabel: "Use this interpreter",
    });
    if (!chosen?.[0]) return undefined;
    value = chosen[0].fsPath;
  }
  if (value === undefined) return undefined;
  const folder = vscode.workspace.workspaceFolders?.[0];
  const cfg = vscode.workspace.getConfiguration(SECTION, folder?.uri);
  // Restricted Mode ignores the workspace's value of this setting: save it for the user then.
  const target = folder && vscode.workspace.isTrusted ? vscode.ConfigurationTarget.WorkspaceFolder : vscode.ConfigurationTarget.Global;
  await cfg.update("interpreter", value, target);
  return value;
}
