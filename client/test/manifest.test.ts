// The extension manifest (package.json) agrees with the code and with the brief.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";

import { DOCUMENT_SELECTOR, NOTEBOOK_TYPE } from "../src/selector";
import { DEFAULTS, SETTING_KEYS } from "../src/settings";

const root = join(__dirname, "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

describe("package.json", () => {
  it("is the shapelens extension", () => {
    assert.equal(pkg.name, "shapelens");
    assert.ok(pkg.displayName);
    assert.ok(pkg.publisher);
    assert.equal(pkg.main, "./dist/extension.js");
    assert.ok(pkg.activationEvents.includes("onLanguage:python"));
  });

  it("serves Python files and the Python cells of Jupyter notebooks, and starts on either", () => {
    assert.deepEqual(DOCUMENT_SELECTOR.map((f) => ({ ...f })), [
      { scheme: "file", language: "python" },
      { notebook: "jupyter-notebook", language: "python" },
    ]);
    assert.ok(pkg.activationEvents.includes(`onNotebook:${NOTEBOOK_TYPE}`));
  });

  it("targets VS Code at most 1.139, and @types/vscode is not newer than the engine", () => {
    const engine = /^\^(\d+)\.(\d+)\.\d+$/.exec(pkg.engines.vscode);
    assert.ok(engine, pkg.engines.vscode);
    const [maj, min] = [Number(engine[1]), Number(engine[2])];
    assert.ok(maj === 1 && min <= 139);
    const types = /^(\d+)\.(\d+)\.\d+$/.exec(pkg.devDependencies["@types/vscode"]);
    assert.ok(types, "pin @types/vscode to an exact version");
    assert.ok(Number(types[1]) === 1 && Number(types[2]) <= min);
  });

  it("contributes one setting per server setting, with the same defaults", () => {
    const props = pkg.contributes.configuration.properties;
    for (const key of SETTING_KEYS) {
      const p = props[`shapelens.${key}`];
      assert.ok(p, `shapelens.${key} missing`);
      assert.deepEqual(p.default, DEFAULTS[key], `default of shapelens.${key}`);
    }
    assert.equal(props["shapelens.trusted"], undefined, "trust comes from the workspace, not a setting");
    assert.deepEqual(props["shapelens.device"].enum, ["meta", "cpu", "cuda", "auto"]);
  });

  it("contributes the commands", () => {
    const ids = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual(ids, ["shapelens.restartServer", "shapelens.selectInterpreter", "shapelens.showModel", "shapelens.showOutput"]);
  });

  it("offers Show Model in the editor's context menu only inside a class, titled `shapelens: Show Model`", () => {
    const show = pkg.contributes.commands.find((c: { command: string }) => c.command === "shapelens.showModel");
    assert.equal(show.title, "shapelens: Show Model");
    const [entry] = pkg.contributes.menus["editor/context"];
    assert.equal(entry.command, "shapelens.showModel");
    assert.match(entry.when, /shapelens\.inClass/);
  });

  it("installs nothing: no task, no install command", () => {
    assert.equal(pkg.contributes.taskDefinitions, undefined);
    assert.ok(!pkg.contributes.commands.some((c: { command: string }) => /install/i.test(c.command)));
  });

  it("has a plain string interpreter setting and the import strategy", () => {
    const props = pkg.contributes.configuration.properties;
    assert.equal(props["shapelens.interpreter"].type, "string");
    assert.deepEqual(props["shapelens.importStrategy"].enum, ["useBundled", "fromEnvironment"]);
    assert.equal(props["shapelens.importStrategy"].default, "useBundled");
  });

  it("is marketplace-ready: repository, SPDX license and LICENSE, icon, changelog, categories", () => {
    assert.match(pkg.repository.url, /^https:\/\//);
    assert.equal(pkg.license, "MIT");
    for (const f of ["LICENSE", "CHANGELOG.md", pkg.icon]) assert.ok(existsSync(join(root, f)), f);
    assert.ok(pkg.categories.length > 0 && pkg.keywords.length > 0);
    const ignore = readFileSync(join(root, ".vscodeignore"), "utf8");
    for (const f of ["LICENSE", "CHANGELOG.md", pkg.icon, "bundled/libs/**", "bundled/tool/lsp_server.py"]) assert.ok(ignore.includes(`!${f}`), f);
  });

  it("the marketplace README links images absolutely (the marketplace cannot resolve relative ones)", () => {
    const readme = readFileSync(join(root, "client", "README.md"), "utf8");
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)|<img [^>]*src="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
    assert.ok(images.length > 0);
    for (const src of images) assert.match(src, /^https:\/\//);
  });

  it("bundles every runtime dependency of the server, pinned", () => {
    const pins = readFileSync(join(root, "client", "bundled-requirements.txt"), "utf8")
      .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    for (const pin of pins) assert.match(pin, /^[A-Za-z0-9_.-]+==[\w.]+$/, pin);
    const names = pins.map((p) => p.split("==")[0].toLowerCase());
    const pyproject = readFileSync(join(root, "pyproject.toml"), "utf8");
    const deps = /^dependencies = \[([\s\S]*?)\]/m.exec(pyproject)?.[1] ?? "";
    for (const m of deps.matchAll(/"([A-Za-z0-9_.-]+)/g)) assert.ok(names.includes(m[1].toLowerCase()), `${m[1]} not bundled`);
    for (const transitive of ["cattrs", "attrs", "typing-extensions", "parso"]) assert.ok(names.includes(transitive), transitive);
  });

  it("is limited in untrusted workspaces and off in virtual ones", () => {
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, "limited");
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes("shapelens.interpreter"));
    const virt = pkg.capabilities.virtualWorkspaces;
    assert.ok(virt === false || virt.supported === false);
  });

  it("bundles: languageclient is the only runtime dependency", () => {
    assert.deepEqual(Object.keys(pkg.dependencies), ["vscode-languageclient"]);
    assert.match(pkg.scripts.package, /--no-dependencies/);
  });
});

describe("dist/extension.js (npm run build)", () => {
  const bundle = join(root, "dist", "extension.js");
  it("needs nothing at run time but vscode and Node's built-ins", (t) => {
    if (!existsSync(bundle)) {
      t.skip("not built");
      return;
    }
    const required = new Set([...readFileSync(bundle, "utf8").matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const other = [...required].filter((m) => m !== "vscode" && !builtins.has(m));
    assert.deepEqual(other, []);
    assert.ok(required.has("vscode"));
  });
});
