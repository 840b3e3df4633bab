// Which Python runs the shapelens server (and its probe worker). Pure: no `vscode` import, so the
// unit tests load it directly.

import * as path from "node:path";

export type InterpreterSource = "setting" | "python-extension" | "default";

export interface InterpreterChoice {
  /** Executable to spawn: an absolute path, or a bare command looked up on PATH. */
  command: string;
  source: InterpreterSource;
}

export interface ResolveInput {
  /** The `shapelens.interpreter` setting (may be empty, null, or contain ~ / ${workspaceFolder}). */
  setting?: string | null;
  /** The Python extension's active environment executable, when that extension is installed. */
  pythonExtension?: string | null;
  /** First workspace folder's file-system path, for ${workspaceFolder} and relative settings. */
  workspaceFolder?: string | null;
  homeDir?: string;
  platform?: NodeJS.Platform;
  /** Environment variables, for ${env:NAME}. */
  env?: Record<string, string | undefined>;
}

/** The fallback when neither the setting nor the Python extension names an interpreter. */
export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? "python" : "python3";
}

/** Expands ~, ${userHome}, ${workspaceFolder} and ${env:NAME} in a path setting, and makes a
 *  relative path that contains a separator relative to the workspace folder. A bare name
 *  ("python3.11") stays as it is, to be looked up on PATH. */
export function expandPathSetting(value: string, input: ResolveInput = {}): string {
  const home = input.homeDir ?? "";
  const folder = input.workspaceFolder ?? "";
  const env = input.env ?? {};
  const posix = (input.platform ?? process.platform) !== "win32";
  const p = posix ? path.posix : path.win32;
  let v = value.trim();
  v = v.replace(/\$\{userHome\}/g, home);
  v = v.replace(/\$\{workspaceFolder\}/g, folder);
  v = v.replace(/\$\{workspaceRoot\}/g, folder);
  v = v.replace(/\$\{env:([^}]+)\}/g, (_m, name: string) => env[name] ?? "");
  if (home && (v === "~" || v.startsWith("~/") || (!posix && v.startsWith("~\\")))) {
    v = home + v.slice(1);
  }
  const hasSep = v.includes("/") || (!posix && v.includes("\\"));
  if (hasSep && !p.isAbsolute(v) && folder) {
    v = p.join(folder, v);
  }
  return v;
}

/** The setting wins; else the Python extension's active environment; else python3. */
export function resolveInterpreter(input: ResolveInput): InterpreterChoice {
  const setting = typeof input.setting === "string" ? input.setting.trim() : "";
  if (setting) {
    return { command: expandPathSetting(setting, input), source: "setting" };
  }
  const fromExt = typeof input.pythonExtension === "string" ? input.pythonExtension.trim() : "";
  if (fromExt) {
    return { command: fromExt, source: "python-extension" };
  }
  return { command: defaultPython(input.platform), source: "default" };
}

export function describeSource(choice: InterpreterChoice): string {
  switch (choice.source) {
    case "setting":
      return "from the shapelens.interpreter setting";
    case "python-extension":
      return "the Python extension's active environment";
    case "default":
      return "the default (no shapelens.interpreter setting and no Python extension environment)";
  }
}
