import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { defaultPython, expandPathSetting, resolveInterpreter } from "../src/interpreter";

describe("resolveInterpreter", () => {
  it("prefers the shapelens.interpreter setting", () => {
    const r = resolveInterpreter({ setting: "/opt/venv/bin/python", pythonExtension: "/usr/bin/python3.12", platform: "linux" });
    assert.deepEqual(r, { command: "/opt/venv/bin/python", source: "setting" });
  });

  it("uses the Python extension's environment when the setting is empty", () => {
    for (const setting of [undefined, null, "", "   "]) {
      const r = resolveInterpreter({ setting, pythonExtension: "/home/u/.venv/bin/python", platform: "linux" });
      assert.deepEqual(r, { command: "/home/u/.venv/bin/python", source: "python-extension" });
    }
  });

  it("falls back to python3 (python on Windows)", () => {
    assert.deepEqual(resolveInterpreter({ platform: "linux" }), { command: "python3", source: "default" });
    assert.deepEqual(resolveInterpreter({ platform: "darwin", pythonExtension: "" }), { command: "python3", source: "default" });
    assert.deepEqual(resolveInterpreter({ platform: "win32" }), { command: "python", source: "default" });
    assert.equal(defaultPython("linux"), "python3");
  });

  it("expands ~, ${workspaceFolder}, ${userHome} and ${env:X} in the setting", () => {
    const base = { homeDir: "/home/u", workspaceFolder: "/work/proj", platform: "linux" as const, env: { VENV: "/v" } };
    assert.equal(resolveInterpreter({ ...base, setting: "~/.venv/bin/python" }).command, "/home/u/.venv/bin/python");
    assert.equal(resolveInterpreter({ ...base, setting: "${workspaceFolder}/.venv/bin/python" }).command, "/work/proj/.venv/bin/python");
    assert.equal(resolveInterpreter({ ...base, setting: "${userHome}/py" }).command, "/home/u/py");
    assert.equal(resolveInterpreter({ ...base, setting: "${env:VENV}/bin/python" }).command, "/v/bin/python");
  });

  it("makes a relative path relative to the workspace folder, but leaves a bare name for PATH", () => {
    const base = { workspaceFolder: "/work/proj", platform: "linux" as const };
    assert.equal(expandPathSetting(".venv/bin/python", base), "/work/proj/.venv/bin/python");
    assert.equal(expandPathSetting("python3.11", base), "python3.11");
    assert.equal(expandPathSetting("  /abs/python  ", base), "/abs/python");
  });

  it("handles Windows paths", () => {
    const base = { workspaceFolder: "C:\\proj", homeDir: "C:\\Users\\u", platform: "win32" as const };
    assert.equal(expandPathSetting(".venv\\Scripts\\python.exe", base), "C:\\proj\\.venv\\Scripts\\python.exe");
    assert.equal(expandPathSetting("~\\py\\python.exe", base), "C:\\Users\\u\\py\\python.exe");
  });
});
