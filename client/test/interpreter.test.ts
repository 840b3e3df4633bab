import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CHECK_SCRIPT,
  defaultPython,
  expandPathSetting,
  formatCommand,
  isShapelensPyproject,
  parseCheckOutput,
  planInstall,
  pythonTooOld,
  resolveInterpreter,
} from "../src/interpreter";

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

describe("environment check", () => {
  it("is a one-line JSON report that imports nothing", () => {
    assert.match(CHECK_SCRIPT, /find_spec\('shapelens'\)/);
    assert.match(CHECK_SCRIPT, /find_spec\('torch'\)/);
    assert.doesNotMatch(CHECK_SCRIPT, /import torch|import shapelens/);
  });

  it("parses the report, ignoring noise before it", () => {
    const out = 'warning: something\n{"python": "3.11.2", "executable": "/v/bin/python", "shapelens": true, "torch": false}\n';
    assert.deepEqual(parseCheckOutput(out), { python: "3.11.2", executable: "/v/bin/python", shapelens: true, torch: false });
    assert.equal(parseCheckOutput("not json"), undefined);
    assert.equal(parseCheckOutput('{"python": 3}'), undefined);
  });

  it("knows which Pythons are too old", () => {
    assert.equal(pythonTooOld("3.10.12"), true);
    assert.equal(pythonTooOld("2.7.18"), true);
    assert.equal(pythonTooOld("3.11.0"), false);
    assert.equal(pythonTooOld("3.13.1"), false);
    assert.equal(pythonTooOld("4.0.0"), false);
    assert.equal(pythonTooOld("garbage"), false);
  });
});

describe("planInstall", () => {
  const py = "/v/bin/python";
  const env = (shapelens: boolean, torch: boolean) => ({ python: "3.11.2", executable: py, shapelens, torch });

  it("needs nothing when both are there", () => {
    const p = planInstall(py, env(true, true));
    assert.deepEqual(p.missing, []);
    assert.deepEqual(p.pipArgs, []);
    assert.equal(p.canStart, true);
  });

  it("installs shapelens with the torch extra when both are missing, and cannot start", () => {
    const p = planInstall(py, env(false, false));
    assert.deepEqual(p.missing, ["shapelens", "torch"]);
    assert.deepEqual(p.pipArgs, ["-m", "pip", "install", "shapelens[torch]"]);
    assert.equal(p.canStart, false);
    assert.match(p.message, /lacks the 'shapelens' and 'torch' packages/);
    assert.match(p.message, /\/v\/bin\/python -m pip install 'shapelens\[torch\]'/);
    assert.equal(p.label, "Install shapelens[torch]");
  });

  it("installs only shapelens when torch is there", () => {
    const p = planInstall(py, env(false, true));
    assert.deepEqual(p.pipArgs, ["-m", "pip", "install", "shapelens"]);
    assert.equal(p.canStart, false);
  });

  it("installs torch but still starts the server when only torch is missing", () => {
    const p = planInstall(py, env(true, false));
    assert.deepEqual(p.missing, ["torch"]);
    assert.deepEqual(p.pipArgs, ["-m", "pip", "install", "torch"]);
    assert.equal(p.canStart, true);
    assert.equal(p.label, "Install torch");
    assert.match(p.message, /lacks the 'torch' package: shapes and mismatches need it/);
  });

  it("installs a shapelens source checkout editable", () => {
    assert.deepEqual(planInstall(py, env(false, false), { devCheckout: "/src/shapelens" }).pipArgs, ["-m", "pip", "install", "-e", "/src/shapelens[torch]"]);
    assert.equal(planInstall(py, env(false, false), { devCheckout: "/src/shapelens" }).label, "Install this checkout (pip install -e .[torch])");
    assert.deepEqual(planInstall(py, env(false, true), { devCheckout: "/src/shapelens" }).pipArgs, ["-m", "pip", "install", "-e", "/src/shapelens"]);
    assert.deepEqual(planInstall(py, env(true, false), { devCheckout: "/src/shapelens" }).pipArgs, ["-m", "pip", "install", "torch"]);
  });

  it("quotes command lines for display", () => {
    assert.equal(formatCommand(["/a b/python", "-m", "pip", "install", "x[y]"]), "'/a b/python' -m pip install 'x[y]'");
    assert.equal(formatCommand(["it's"]), "'it'\\''s'");
  });

  it("recognises shapelens's own pyproject.toml", () => {
    assert.equal(isShapelensPyproject('[build-system]\nrequires = []\n\n[project]\nname = "shapelens"\nversion = "0.1.0"\n'), true);
    assert.equal(isShapelensPyproject('[project]\nname = "other"\n[tool.x]\nname = "shapelens"\n'), false);
    assert.equal(isShapelensPyproject("[tool.poetry]\nname = 'shapelens'\n"), false);
  });
});
