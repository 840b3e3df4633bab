// VS Code settings (`shapelens.*`) -> the server's initializationOptions / configuration section.
// Pure: no `vscode` import, so the unit tests load it directly.

import { IMPORT_STRATEGIES, type ImportStrategy } from "./launch";

export const SECTION = "shapelens";

export const DEVICES = ["meta", "cpu", "cuda", "auto"] as const;
export type Device = (typeof DEVICES)[number];

/** The user-facing settings, validated. Names match package.json's contributes.configuration. */
export interface ClientSettings {
  enable: boolean;
  device: Device;
  probeTimeout: number;
  /** Seconds planning one document may take (the server's planning budget). */
  planBudget: number;
  debounce: number;
  inlayHints: boolean;
  /** Empty: the Python extension's environment, else python3. */
  interpreter: string;
  /** Client only: which shapelens/pygls/jedi the server imports (bundled/tool/lsp_server.py). */
  importStrategy: ImportStrategy;
}

/** What the server receives as initializationOptions and as the `shapelens` section of
 *  workspace/didChangeConfiguration and workspace/configuration. */
export interface ServerOptions extends Omit<ClientSettings, "interpreter" | "importStrategy"> {
  interpreter: string | null;
  /** From workspace trust, never a user setting: false means the server runs no user code. */
  trusted: boolean;
}

export const DEFAULTS: ClientSettings = {
  enable: true,
  device: "meta",
  probeTimeout: 5,
  planBudget: 30,
  debounce: 300,
  inlayHints: true,
  interpreter: "",
  importStrategy: "useBundled",
};

/** The server's limits (server/shapelens/lsp/settings.py); outside them it uses its default.
 *  MAX_PROBE_TIMEOUT bounds planBudget too. */
export const MAX_PROBE_TIMEOUT = 600;
export const MAX_DEBOUNCE = 10_000;

/** Every server setting key, in package.json order (the manifest test checks they agree). */
export const SETTING_KEYS = Object.keys(DEFAULTS) as (keyof ClientSettings)[];

/** Reads `shapelens.<key>`; `get` is `workspace.getConfiguration("shapelens").get` in the
 *  extension, a plain object lookup in tests. Invalid values fall back to the defaults. */
export function readSettings(get: (key: string) => unknown): ClientSettings {
  const enable = get("enable");
  const device = get("device");
  const timeout = get("probeTimeout");
  const budget = get("planBudget");
  const debounce = get("debounce");
  const inlay = get("inlayHints");
  const interp = get("interpreter");
  const strategy = get("importStrategy");
  return {
    enable: typeof enable === "boolean" ? enable : DEFAULTS.enable,
    device: typeof device === "string" && (DEVICES as readonly string[]).includes(device) ? (device as Device) : DEFAULTS.device,
    probeTimeout: typeof timeout === "number" && timeout > 0 && timeout <= MAX_PROBE_TIMEOUT ? timeout : DEFAULTS.probeTimeout,
    planBudget: typeof budget === "number" && budget > 0 && budget <= MAX_PROBE_TIMEOUT ? budget : DEFAULTS.planBudget,
    debounce: typeof debounce === "number" && debounce >= 0 && debounce <= MAX_DEBOUNCE ? Math.round(debounce) : DEFAULTS.debounce,
    inlayHints: typeof inlay === "boolean" ? inlay : DEFAULTS.inlayHints,
    interpreter: typeof interp === "string" ? interp.trim() : DEFAULTS.interpreter,
    importStrategy:
      typeof strategy === "string" && (IMPORT_STRATEGIES as readonly string[]).includes(strategy)
        ? (strategy as ImportStrategy)
        : DEFAULTS.importStrategy,
  };
}

/** The initializationOptions. `interpreter` is the interpreter the server was started in (the
 *  resolved one, so the server's probe worker uses the same environment), or null. */
export function toServerOptions(settings: ClientSettings, trusted: boolean, interpreter?: string | null): ServerOptions {
  return {
    enable: settings.enable,
    device: settings.device,
    probeTimeout: settings.probeTimeout,
    planBudget: settings.planBudget,
    debounce: settings.debounce,
    inlayHints: settings.inlayHints,
    interpreter: interpreter || settings.interpreter || null,
    trusted,
  };
}

export type ChangeAction = "none" | "notify" | "restart" | "start" | "stop";

/** What a settings change needs: a new interpreter needs a new process (restart); turning the
 *  extension off or on stops or starts it; anything else is pushed to the running server with
 *  workspace/didChangeConfiguration (notify). */
export function classifyChange(before: ClientSettings, after: ClientSettings): ChangeAction {
  if (before.enable !== after.enable) return after.enable ? "start" : "stop";
  if (!after.enable) return "none";
  if (before.interpreter !== after.interpreter || before.importStrategy !== after.importStrategy) return "restart";
  for (const k of SETTING_KEYS) {
    if (before[k] !== after[k]) return "notify";
  }
  return "none";
}
