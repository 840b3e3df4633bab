// Which Python runs the shapelens server, and what to tell the user when it lacks packages.
// Pure: no `vscode` import, so the unit tests load it directly.

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

// --- environment check --------------------------------------------------------------------------

/** Run as `<python> -c CHECK_SCRIPT`; prints one JSON line. It only looks packages up
 *  (importlib.util.find_spec), it imports nothing, so it is fast and runs no user code. */
export const CHECK_SCRIPT = [
  "import importlib.util as u, json, sys",
  "print(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], 'executable': sys.executable,",
  " 'shapelens': u.find_spec('shapelens') is not None, 'torch': u.find_spec('torch') is not None}))",
].join("\n");

/** Python version the shapelens package needs. */
export const MIN_PYTHON: [number, number] = [3, 11];

export interface EnvironmentReport {
  python: string;
  executable: string;
  shapelens: boolean;
  torch: boolean;
}

export function parseCheckOutput(stdout: string): EnvironmentReport | undefined {
  for (const line of stdout.split(/\r?\n/).reverse()) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const o = JSON.parse(t) as Partial<EnvironmentReport>;
      if (typeof o.python === "string" && typeof o.shapelens === "boolean" && typeof o.torch === "boolean") {
        return { python: o.python, executable: String(o.executable ?? ""), shapelens: o.shapelens, torch: o.torch };
      }
    } catch {
      // not our line
    }
  }
  return undefined;
}

export function pythonTooOld(version: string, min: [number, number] = MIN_PYTHON): boolean {
  const [maj, minor] = version.split(".").map((x) => Number.parseInt(x, 10));
  if (!Number.isFinite(maj) || !Number.isFinite(minor)) return false;
  return maj < min[0] || (maj === min[0] && minor < min[1]);
}

export interface InstallPlan {
  /** Packages (pip requirement strings or an editable path) that are missing. */
  missing: string[];
  /** argv after the interpreter: ["-m", "pip", "install", ...]. Empty when nothing is missing. */
  pipArgs: string[];
  /** One sentence for the notification. */
  message: string;
  /** The install button's text. */
  label: string;
  /** Whether the server can still start (shapelens present, only torch missing). */
  canStart: boolean;
}

export interface InstallContext {
  /** A workspace folder that is a shapelens source checkout (pyproject.toml names the project
   *  "shapelens"): installing it editable is what a developer wants. Only pass it in a trusted
   *  workspace, since installing a checkout runs its build backend. */
  devCheckout?: string | null;
}

/** What to install into `python`, given the environment check. */
export function planInstall(python: string, report: EnvironmentReport, ctx: InstallContext = {}): InstallPlan {
  const missing: string[] = [];
  let pipArgs: string[] = [];
  if (!report.shapelens && !report.torch) missing.push("shapelens", "torch");
  else if (!report.shapelens) missing.push("shapelens");
  else if (!report.torch) missing.push("torch");
  if (missing.length === 0) {
    return { missing, pipArgs, message: "", label: "", canStart: true };
  }
  if (ctx.devCheckout) {
    const target = !report.shapelens ? (report.torch ? ctx.devCheckout : `${ctx.devCheckout}[torch]`) : "torch";
    pipArgs = !report.shapelens ? ["-m", "pip", "install", "-e", target] : ["-m", "pip", "install", "torch"];
  } else if (!report.shapelens) {
    pipArgs = ["-m", "pip", "install", report.torch ? "shapelens" : "shapelens[torch]"];
  } else {
    pipArgs = ["-m", "pip", "install", "torch"];
  }
  const names = missing.map((m) => `'${m}'`).join(" and ");
  const what = missing.length > 1 ? "packages" : "package";
  const consequence = report.shapelens
    ? "shapes and mismatches need it to probe your models"
    : "the shapelens language server cannot start";
  const message = `The Python interpreter ${python} lacks the ${names} ${what}: ${consequence}. Install with: ${formatCommand([python, ...pipArgs])}`;
  const label =
    ctx.devCheckout && !report.shapelens
      ? `Install this checkout (pip install -e${report.torch ? "" : " .[torch]"})`
      : `Install ${pipArgs[pipArgs.length - 1]}`;
  return { missing, pipArgs, message, label, canStart: report.shapelens };
}

/** A command line for display (POSIX-shell quoting). */
export function formatCommand(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** Whether a pyproject.toml's text is shapelens's own (a source checkout). */
export function isShapelensPyproject(text: string): boolean {
  const project = /^\[project\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text);
  if (!project) return false;
  return /^\s*name\s*=\s*["']shapelens["']\s*$/m.test(project[1]);
}
