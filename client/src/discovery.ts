// Python environments the "shapelens: Select Interpreter" quick pick offers when the Python
// extension is not there to ask: workspace virtual environments, conda environments, pyenv
// versions and the Pythons on PATH. Pure: file-system access comes in through `DiscoveryFs`, so
// the unit tests run it on a fake tree.

import * as path from "node:path";

export type CandidateKind = "workspace" | "conda" | "pyenv" | "path";

export interface Candidate {
  /** The interpreter executable (what `shapelens.interpreter` gets set to). */
  path: string;
  /** Short name for the quick pick: ".venv (myproject)", "conda: ml", "pyenv 3.12.4", "python3 on PATH". */
  label: string;
  kind: CandidateKind;
}

export interface DiscoveryFs {
  isFile(p: string): boolean;
  /** Entry names of a folder; [] when it does not exist. */
  list(p: string): string[];
  /** File text, or undefined when it does not exist. */
  read(p: string): string | undefined;
  /** The resolved path (symlinks followed), for de-duplication; the path itself when unsure. */
  real?(p: string): string;
}

export interface DiscoveryInput {
  workspaceFolders: string[];
  home: string;
  env: Record<string, string | undefined>;
  platform?: NodeJS.Platform;
  fs: DiscoveryFs;
}

export const WORKSPACE_VENVS = [".venv", "venv"];
const CONDA_ROOTS = ["miniconda3", "anaconda3", "miniforge3", "mambaforge", "micromamba", ".conda"];

/** The interpreter inside an environment folder (bin/python, or Scripts\python.exe on Windows). */
export function envPython(prefix: string, platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? path.win32.join(prefix, "python.exe") : path.posix.join(prefix, "bin", "python");
}

function venvPython(prefix: string, platform: NodeJS.Platform): string {
  return platform === "win32" ? path.win32.join(prefix, "Scripts", "python.exe") : path.posix.join(prefix, "bin", "python");
}

export function discoverInterpreters(input: DiscoveryInput): Candidate[] {
  const platform = input.platform ?? process.platform;
  const p = platform === "win32" ? path.win32 : path.posix;
  const { fs, env, home } = input;
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const add = (file: string, label: string, kind: CandidateKind) => {
    if (!fs.isFile(file)) return;
    const key = fs.real ? fs.real(file) : file;
    if (seen.has(key) || seen.has(file)) return;
    seen.add(key);
    seen.add(file);
    out.push({ path: file, label, kind });
  };

  for (const folder of input.workspaceFolders) {
    for (const name of WORKSPACE_VENVS) {
      add(venvPython(p.join(folder, name), platform), `${name} (${p.basename(folder)})`, "workspace");
    }
  }

  // conda: the environments it registered, the active one, and the usual install roots.
  const condaPrefixes: string[] = [];
  const registered = fs.read(p.join(home, ".conda", "environments.txt"));
  for (const line of (registered ?? "").split(/\r?\n/)) if (line.trim()) condaPrefixes.push(line.trim());
  if (env.CONDA_PREFIX) condaPrefixes.push(env.CONDA_PREFIX);
  for (const root of [...CONDA_ROOTS.map((r) => p.join(home, r)), "/opt/conda"]) {
    if (platform === "win32" && root === "/opt/conda") continue;
    condaPrefixes.push(root);
    for (const name of fs.list(p.join(root, "envs")).sort()) condaPrefixes.push(p.join(root, "envs", name));
  }
  for (const prefix of condaPrefixes) {
    const isEnv = p.basename(p.dirname(prefix)) === "envs";
    add(envPython(prefix, platform), `conda: ${isEnv ? p.basename(prefix) : `base (${p.basename(prefix)})`}`, "conda");
  }

  const pyenvRoot = env.PYENV_ROOT || p.join(home, ".pyenv");
  for (const version of fs.list(p.join(pyenvRoot, "versions")).sort().reverse()) {
    add(envPython(p.join(pyenvRoot, "versions", version), platform), `pyenv ${version}`, "pyenv");
  }

  const names = platform === "win32" ? ["python.exe", "python3.exe"] : ["python3", "python"];
  const pathSep = platform === "win32" ? ";" : ":";
  for (const dir of (env.PATH ?? env.Path ?? "").split(pathSep)) {
    if (!dir) continue;
    for (const name of names) add(p.join(dir, name), `${name.replace(/\.exe$/, "")} on PATH (${dir})`, "path");
  }
  return out;
}
