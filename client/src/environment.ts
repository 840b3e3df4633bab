// The environment check: one question, "can this interpreter import torch?", and what to tell the
// user when it cannot. The server itself ships in the extension (bundled/libs), so torch is all
// the environment needs. Pure: no `vscode` import, so the unit tests load it directly.

import { formatCommand } from "./shell";

/** Run as `<python> -c CHECK_SCRIPT`; prints one JSON line. It only looks torch up
 *  (importlib.util.find_spec) without importing it, so it takes milliseconds and runs no user
 *  code; it also says how packages get into that environment, for the install hint. A torch in
 *  site-packages counts once its .dist-info is there: pip writes that last, so a torch that is
 *  still being installed is not taken for a working one. */
export const CHECK_SCRIPT = [
  "import importlib.metadata as md, importlib.util as u, json, os, sys, sysconfig",
  "purelib = sysconfig.get_paths().get('purelib', '')",
  "spec = u.find_spec('torch')",
  "def dist():",
  "    try:",
  "        return bool(md.version('torch'))",
  "    except Exception:",
  "        return False",
  "print(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], 'executable': sys.executable,",
  " 'prefix': sys.prefix, 'purelib': purelib,",
  " 'torch': spec is not None and (dist() or not (spec.origin or '').startswith(purelib)),",
  " 'pip': u.find_spec('pip') is not None,",
  " 'conda': os.path.isdir(os.path.join(sys.prefix, 'conda-meta')),",
  " 'venv': sys.prefix != getattr(sys, 'base_prefix', sys.prefix)}))",
].join("\n");

/** Whether a new entry in site-packages means a torch install just finished (its .dist-info). */
export function isTorchDistInfo(entry: string): boolean {
  return /^torch-[^-]+\.dist-info$/.test(entry);
}

/** Python version the shapelens server needs. */
export const MIN_PYTHON: [number, number] = [3, 11];

export interface EnvironmentReport {
  python: string;
  executable: string;
  prefix: string;
  /** site-packages: watched while torch is missing, so an install there is noticed at once. */
  purelib: string;
  torch: boolean;
  pip: boolean;
  conda: boolean;
  venv: boolean;
}

export function parseCheckOutput(stdout: string): EnvironmentReport | undefined {
  for (const line of stdout.split(/\r?\n/).reverse()) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const o = JSON.parse(t) as Partial<EnvironmentReport>;
      if (typeof o.python === "string" && typeof o.torch === "boolean") {
        return {
          python: o.python,
          executable: String(o.executable ?? ""),
          prefix: String(o.prefix ?? ""),
          purelib: String(o.purelib ?? ""),
          torch: o.torch,
          pip: o.pip === true,
          conda: o.conda === true,
          venv: o.venv === true,
        };
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

/** The command that installs torch into exactly that environment: its own pip when it has one;
 *  conda for a conda environment without pip; else uv, which installs into any interpreter. */
export function torchInstallCommand(python: string, report: Pick<EnvironmentReport, "pip" | "conda" | "prefix">): string[] {
  if (report.pip) return [python, "-m", "pip", "install", "torch"];
  if (report.conda && report.prefix) return ["conda", "install", "--prefix", report.prefix, "-c", "conda-forge", "pytorch"];
  return ["uv", "pip", "install", "--python", python, "torch"];
}

/** The plain-words message for an interpreter without torch. Nothing is installed by the
 *  extension: the user runs the command (and chooses the build: CUDA or CPU-only). */
export function torchMissingMessage(python: string, report: EnvironmentReport): { message: string; command: string } {
  const command = formatCommand(torchInstallCommand(python, report));
  const cpu = report.pip ? " (for the smaller CPU-only build add --index-url https://download.pytorch.org/whl/cpu)" : "";
  const message =
    `shapelens needs PyTorch, and the interpreter ${python} cannot import torch. ` +
    `Install it into that environment with: ${command}${cpu} — or choose your project's interpreter. ` +
    `shapelens starts by itself once torch is there.`;
  return { message, command };
}
