import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { CHECK_SCRIPT, isTorchDistInfo, parseCheckOutput, pythonTooOld, torchInstallCommand, torchMissingMessage } from "../src/environment";
import { formatCommand } from "../src/shell";

const report = (o: Partial<ReturnType<typeof parseCheckOutput>> = {}) => ({
  python: "3.11.2", executable: "/p/.venv/bin/python", prefix: "/p/.venv", purelib: "/p/.venv/lib/python3.11/site-packages",
  torch: false, pip: true, conda: false, venv: true, ...o,
});

describe("environment check", () => {
  it("asks only about torch, and imports nothing", () => {
    assert.match(CHECK_SCRIPT, /find_spec\('torch'\)/);
    assert.doesNotMatch(CHECK_SCRIPT, /shapelens|pygls|jedi/);
    assert.doesNotMatch(CHECK_SCRIPT, /import torch/);
  });

  it("parses the report, ignoring noise before it", () => {
    const line = JSON.stringify(report({ torch: true }));
    assert.deepEqual(parseCheckOutput(`warning: something\n${line}\n`), report({ torch: true }));
    assert.equal(parseCheckOutput("not json"), undefined);
    assert.equal(parseCheckOutput('{"python": 3}'), undefined);
    // An older or partial answer still parses; what it lacks reads as absent.
    assert.deepEqual(parseCheckOutput('{"python": "3.12.1", "torch": true}'), {
      python: "3.12.1", executable: "", prefix: "", purelib: "", torch: true, pip: false, conda: false, venv: false });
  });

  it("runs in a real Python and answers for it (the repo's .venv has torch when `make setup` ran)", (t) => {
    const venv = join(__dirname, "..", "..", ".venv", "bin", "python");
    const python = existsSync(venv) ? venv : "python3";
    const r = spawnSync(python, ["-c", CHECK_SCRIPT], { encoding: "utf8" });
    if (r.error) {
      t.skip(`no ${python} here`);
      return;
    }
    const got = parseCheckOutput(r.stdout);
    assert.ok(got, r.stdout + r.stderr);
    assert.match(got.python, /^3\.\d+\.\d+$/);
    assert.ok(got.purelib.length > 0 && got.pip);
    if (python === venv) assert.equal(got.torch, true);
    const bare = spawnSync(python, ["-I", "-S", "-c", CHECK_SCRIPT], { encoding: "utf8" }); // no site-packages at all
    assert.equal(parseCheckOutput(bare.stdout)?.torch, false);
  });

  it("notices the end of a torch install by its .dist-info, not its first files", () => {
    assert.equal(isTorchDistInfo("torch-2.13.0+cpu.dist-info"), true);
    assert.equal(isTorchDistInfo("torch-2.13.0.dist-info"), true);
    for (const e of ["torch", "torchgen", "torchvision-0.28.0.dist-info", "torch-2.13.0.dist-info.tmp"]) assert.equal(isTorchDistInfo(e), false, e);
  });

  it("knows which Pythons are too old", () => {
    assert.equal(pythonTooOld("3.10.12"), true);
    assert.equal(pythonTooOld("2.7.18"), true);
    assert.equal(pythonTooOld("3.11.0"), false);
    assert.equal(pythonTooOld("4.0.0"), false);
    assert.equal(pythonTooOld("garbage"), false);
  });
});

describe("the torch install hint", () => {
  it("uses that interpreter's own pip", () => {
    assert.deepEqual(torchInstallCommand("/p/.venv/bin/python", report()), ["/p/.venv/bin/python", "-m", "pip", "install", "torch"]);
  });

  it("uses conda for a conda environment without pip, and uv when there is neither", () => {
    assert.deepEqual(torchInstallCommand("/c/envs/ml/bin/python", report({ pip: false, conda: true, prefix: "/c/envs/ml" })),
      ["conda", "install", "--prefix", "/c/envs/ml", "-c", "conda-forge", "pytorch"]);
    assert.deepEqual(torchInstallCommand("/u/.venv/bin/python", report({ pip: false })),
      ["uv", "pip", "install", "--python", "/u/.venv/bin/python", "torch"]);
  });

  it("says it in plain words, with the interpreter's path and the exact command", () => {
    const { message, command } = torchMissingMessage("/my proj/.venv/bin/python", report());
    assert.equal(command, "'/my proj/.venv/bin/python' -m pip install torch");
    assert.ok(message.includes("the interpreter /my proj/.venv/bin/python cannot import torch"), message);
    assert.ok(message.includes(command));
    assert.match(message, /starts by itself once torch is there/);
    assert.match(message, /CPU-only build/);
  });

  it("quotes command lines for display", () => {
    assert.equal(formatCommand(["/a b/python", "-m", "pip", "install", "x[y]"]), "'/a b/python' -m pip install 'x[y]'");
    assert.equal(formatCommand(["it's"]), "'it'\\''s'");
  });
});
