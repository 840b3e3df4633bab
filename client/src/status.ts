// The status bar item's text and tooltip, from the client's state. Pure: no `vscode` import.

export type Phase =
  | "disabled" // shapelens.enable is false
  | "starting" // checking the interpreter / waiting for the server's initialize reply
  | "warming" // server running, its probe worker still importing torch
  | "needsTorch" // the interpreter cannot import torch (server not started; re-checked on focus)
  | "ready" // server running, idle
  | "probing" // server running a probe
  | "workerError" // the probe worker failed (crashed, could not import torch, ...)
  | "stopped"; // the server process exited / failed to start

export interface StatusInput {
  phase: Phase;
  /** shapelens error diagnostics in all open files. */
  mismatches: number;
  /** Files with shapelens diagnostics (for the tooltip). */
  files?: number;
  trusted: boolean;
  /** Interpreter the server runs in, and where it came from. */
  interpreter?: string;
  interpreterSource?: string;
  /** Error text (worker error, why it stopped, what is missing) or what is being probed. */
  detail?: string;
  serverVersion?: string;
}

export type Severity = "normal" | "warning" | "error";

export interface StatusView {
  text: string;
  /** Markdown. */
  tooltip: string;
  severity: Severity;
}

export function plural(n: number, one: string, many = `${one}es`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

export function renderStatus(s: StatusInput): StatusView {
  let text: string;
  let severity: Severity = "normal";
  let headline: string;
  switch (s.phase) {
    case "disabled":
      text = "$(circle-slash) shapelens";
      headline = "shapelens is turned off (`shapelens.enable` is false).";
      break;
    case "starting":
      text = "$(loading~spin) shapelens: starting";
      headline = "Starting the shapelens language server…";
      break;
    case "warming":
      text = "$(loading~spin) shapelens: starting: importing torch (first start)";
      headline = "The server is running; its probe worker is importing torch (seconds, the first time).";
      break;
    case "needsTorch":
      text = "$(warning) shapelens: needs torch";
      severity = "warning";
      headline = "The interpreter cannot import torch. Install torch there or choose another interpreter; shapelens starts by itself once torch is there.";
      break;
    case "probing":
      text = "$(sync~spin) shapelens: probing";
      headline = "Probing tensor shapes…";
      break;
    case "workerError":
      text = "$(warning) shapelens: worker error";
      severity = "warning";
      headline = "The probe worker failed; shapes and mismatches may be missing.";
      break;
    case "stopped":
      text = "$(debug-stop) shapelens: stopped";
      severity = "error";
      headline = "The shapelens server is not running.";
      break;
    case "ready":
    default:
      if (s.mismatches > 0) {
        text = `$(error) shapelens: ${plural(s.mismatches, "mismatch")}`;
        headline = `${plural(s.mismatches, "shape mismatch")} in ${plural(s.files ?? 1, "file", "files")}. See the Problems panel.`;
      } else {
        text = "$(check) shapelens";
        headline = "No shape mismatches in open files.";
      }
      break;
  }
  if (!s.trusted && s.phase !== "disabled") {
    text += " $(shield)";
  }
  const lines = [`**shapelens** — ${headline}`];
  if (s.detail) lines.push("", escapeMd(s.detail));
  if (!s.trusted) {
    lines.push("", "Restricted Mode: no code from this workspace runs; models are not probed.");
  }
  if (s.interpreter) {
    const src = s.interpreterSource ? ` (${s.interpreterSource})` : "";
    lines.push("", `Interpreter: \`${s.interpreter}\`${src}`);
  }
  if (s.serverVersion) lines.push("", `Server: shapelens ${escapeMd(s.serverVersion)}`);
  lines.push("", "Click to show the shapelens output.");
  return { text, tooltip: lines.join("\n"), severity };
}

export interface DiagnosticLike {
  source?: string;
  /** vscode.DiagnosticSeverity: 0 Error, 1 Warning, 2 Information, 3 Hint. */
  severity: number;
}

/** Mismatches = shapelens diagnostics of severity Error; files = documents with any of them. */
export function countMismatches(perFile: Iterable<readonly DiagnosticLike[]>): { mismatches: number; files: number } {
  let mismatches = 0;
  let files = 0;
  for (const diags of perFile) {
    const n = diags.filter((d) => d.source === "shapelens" && d.severity === 0).length;
    mismatches += n;
    if (n > 0) files += 1;
  }
  return { mismatches, files };
}

/** Log level of one server stderr line (Python logging's "LEVEL" word near the start), so the
 *  output channel does not show every server log line as an error. */
export function logLevel(line: string): "error" | "warn" | "info" | "debug" | "trace" {
  const head = line.slice(0, 80);
  if (/\b(CRITICAL|ERROR|FATAL)\b/.test(head) || /^Traceback \(most recent call last\)/.test(line)) return "error";
  if (/\bWARN(ING)?\b/.test(head)) return "warn";
  if (/\bDEBUG\b/.test(head)) return "debug";
  if (/\bTRACE\b/.test(head)) return "trace";
  return "info";
}
