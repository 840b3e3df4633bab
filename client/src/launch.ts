// How the server process is started: the user's interpreter runs the launcher shipped in the
// extension (bundled/tool/lsp_server.py), which puts bundled/libs on sys.path. Pure.

import * as path from "node:path";

export const IMPORT_STRATEGIES = ["useBundled", "fromEnvironment"] as const;
export type ImportStrategy = (typeof IMPORT_STRATEGIES)[number];

export interface Launch {
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  /** The strategy in effect (a missing bundle falls back to the environment) and why, if it differs. */
  strategy: ImportStrategy;
  note?: string;
}

export function bundledPaths(extensionPath: string): { tool: string; libs: string } {
  return {
    tool: path.join(extensionPath, "bundled", "tool", "lsp_server.py"),
    libs: path.join(extensionPath, "bundled", "libs"),
  };
}

/** `bundled` says whether bundled/libs holds a shapelens package (a .vsix always has one; an
 *  extension run from a source checkout before `npm run bundle` has not). */
export function serverLaunch(
  python: string,
  strategy: ImportStrategy,
  extensionPath: string,
  bundled: boolean,
  baseEnv: Record<string, string | undefined>,
): Launch {
  const { tool } = bundledPaths(extensionPath);
  let effective = strategy;
  let note: string | undefined;
  if (strategy === "useBundled" && !bundled) {
    effective = "fromEnvironment";
    note = "this copy of the extension has no bundled server (bundled/libs is empty: run `npm run bundle`); using the environment's shapelens";
  }
  return {
    command: python,
    args: [tool],
    env: {
      ...baseEnv,
      SHAPELENS_IMPORT_STRATEGY: effective,
      PYTHONUNBUFFERED: "1",
      PYTHONIOENCODING: "utf-8",
    },
    strategy: effective,
    note,
  };
}
