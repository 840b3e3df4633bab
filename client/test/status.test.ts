import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { countMismatches, logLevel, plural, renderStatus, type StatusInput } from "../src/status";

const base: StatusInput = { phase: "ready", mismatches: 0, trusted: true };

describe("renderStatus", () => {
  it("starting", () => {
    const v = renderStatus({ ...base, phase: "starting", interpreter: "/v/bin/python", interpreterSource: "from the shapelens.interpreter setting" });
    assert.equal(v.text, "$(loading~spin) shapelens: starting");
    assert.match(v.tooltip, /Starting the shapelens language server/);
    assert.match(v.tooltip, /Interpreter: `\/v\/bin\/python` \(from the shapelens.interpreter setting\)/);
    assert.equal(v.severity, "normal");
  });

  it("probing", () => {
    const v = renderStatus({ ...base, phase: "probing", detail: "Probing model.py" });
    assert.equal(v.text, "$(sync~spin) shapelens: probing");
    assert.match(v.tooltip, /Probing model\\\.py/);
  });

  it("N mismatches", () => {
    assert.equal(renderStatus({ ...base, mismatches: 0 }).text, "$(check) shapelens");
    assert.equal(renderStatus({ ...base, mismatches: 1 }).text, "$(error) shapelens: 1 mismatch");
    const v = renderStatus({ ...base, mismatches: 3, files: 2 });
    assert.equal(v.text, "$(error) shapelens: 3 mismatches");
    assert.match(v.tooltip, /3 shape mismatches in 2 files/);
  });

  it("worker error", () => {
    const v = renderStatus({ ...base, phase: "workerError", detail: "worker died: ImportError torch" });
    assert.equal(v.text, "$(warning) shapelens: worker error");
    assert.equal(v.severity, "warning");
    assert.match(v.tooltip, /worker died: ImportError torch/);
  });

  it("cold start, needs torch, stopped, disabled", () => {
    assert.equal(renderStatus({ ...base, phase: "warming" }).text, "$(loading~spin) shapelens: starting: importing torch (first start)");
    assert.equal(renderStatus({ ...base, phase: "needsTorch" }).text, "$(warning) shapelens: needs torch");
    assert.equal(renderStatus({ ...base, phase: "needsTorch" }).severity, "warning");
    assert.match(renderStatus({ ...base, phase: "needsTorch" }).tooltip, /starts by itself once torch is there/);
    assert.equal(renderStatus({ ...base, phase: "stopped" }).text, "$(debug-stop) shapelens: stopped");
    assert.equal(renderStatus({ ...base, phase: "disabled" }).text, "$(circle-slash) shapelens");
  });

  it("marks Restricted Mode", () => {
    const v = renderStatus({ ...base, trusted: false, mismatches: 1 });
    assert.equal(v.text, "$(error) shapelens: 1 mismatch $(shield)");
    assert.match(v.tooltip, /Restricted Mode: no code from this workspace runs/);
  });

  it("escapes markdown in details", () => {
    assert.match(renderStatus({ ...base, phase: "stopped", detail: "a*b_[c]" }).tooltip, /a\\\*b\\_\\\[c\\\]/);
  });

  it("pluralises", () => {
    assert.equal(plural(1, "mismatch"), "1 mismatch");
    assert.equal(plural(2, "mismatch"), "2 mismatches");
    assert.equal(plural(2, "file", "files"), "2 files");
  });
});

describe("countMismatches", () => {
  it("counts shapelens errors only", () => {
    const r = countMismatches([
      [{ source: "shapelens", severity: 0 }, { source: "shapelens", severity: 1 }, { source: "Pylance", severity: 0 }],
      [{ source: "shapelens", severity: 0 }, { source: "shapelens", severity: 0 }],
      [{ source: "ruff", severity: 0 }],
      [],
    ]);
    assert.deepEqual(r, { mismatches: 3, files: 2 });
  });
});

describe("logLevel", () => {
  it("maps Python logging levels", () => {
    assert.equal(logLevel("2026-11-23 03:40:00,123 ERROR shapelens.lsp: boom"), "error");
    assert.equal(logLevel("WARNING:pygls:something"), "warn");
    assert.equal(logLevel("DEBUG shapelens: x"), "debug");
    assert.equal(logLevel("INFO shapelens: started"), "info");
    assert.equal(logLevel("Traceback (most recent call last):"), "error");
    assert.equal(logLevel("plain text mentioning an error later on in a long line ................................................ ERROR"), "info");
  });
});
