import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { classifyChange, DEFAULTS, readSettings, SETTING_KEYS, toServerOptions } from "../src/settings";

const from = (o: Record<string, unknown>) => (k: string) => o[k];

describe("readSettings", () => {
  it("gives the defaults for an empty configuration", () => {
    assert.deepEqual(readSettings(from({})), DEFAULTS);
    assert.deepEqual(DEFAULTS, { enable: true, device: "meta", probeTimeout: 5, planBudget: 30, debounce: 300, inlayHints: true, interpreter: "", importStrategy: "useBundled" });
  });

  it("reads every setting", () => {
    const s = readSettings(from({ enable: false, device: "cuda", probeTimeout: 12.5, planBudget: 8, debounce: 50, inlayHints: false, interpreter: " /v/bin/python ", importStrategy: "fromEnvironment" }));
    assert.deepEqual(s, { enable: false, device: "cuda", probeTimeout: 12.5, planBudget: 8, debounce: 50, inlayHints: false, interpreter: "/v/bin/python", importStrategy: "fromEnvironment" });
  });

  it("replaces invalid values with the defaults (the server's limits)", () => {
    const s = readSettings(from({ enable: "yes", device: "tpu", probeTimeout: -1, planBudget: 0, debounce: 20000, inlayHints: 1, interpreter: "", importStrategy: "sometimes" }));
    assert.deepEqual(s, DEFAULTS);
    assert.equal(readSettings(from({ probeTimeout: 601 })).probeTimeout, 5);
    assert.equal(readSettings(from({ probeTimeout: Number.NaN })).probeTimeout, 5);
    assert.equal(readSettings(from({ debounce: 12.7 })).debounce, 13);
    assert.equal(readSettings(from({ interpreter: 42 })).interpreter, "");
    assert.equal(readSettings(from({ interpreter: null })).interpreter, "");
  });
});

describe("toServerOptions (initializationOptions)", () => {
  it("has exactly the server's keys, with trusted from workspace trust", () => {
    const opts = toServerOptions(DEFAULTS, true, "/v/bin/python");
    assert.deepEqual(opts, { enable: true, device: "meta", probeTimeout: 5, planBudget: 30, debounce: 300, inlayHints: true, interpreter: "/v/bin/python", trusted: true });
    assert.deepEqual(Object.keys(opts).sort(), ["debounce", "device", "enable", "inlayHints", "interpreter", "planBudget", "probeTimeout", "trusted"]);
  });

  it("passes trusted=false in Restricted Mode", () => {
    assert.equal(toServerOptions(DEFAULTS, false).trusted, false);
  });

  it("falls back to the interpreter setting, then null", () => {
    assert.equal(toServerOptions({ ...DEFAULTS, interpreter: "/x/python" }, true).interpreter, "/x/python");
    assert.equal(toServerOptions(DEFAULTS, true).interpreter, null);
    assert.equal(toServerOptions({ ...DEFAULTS, interpreter: "/x/python" }, true, "/resolved/python").interpreter, "/resolved/python");
  });

  it("is JSON (what goes over the wire)", () => {
    const opts = toServerOptions({ ...DEFAULTS, device: "cpu" }, false, null);
    assert.deepEqual(JSON.parse(JSON.stringify(opts)), opts);
  });
});

describe("classifyChange", () => {
  it("restarts for a new interpreter or import strategy", () => {
    assert.equal(classifyChange(DEFAULTS, { ...DEFAULTS, interpreter: "/v/bin/python" }), "restart");
    assert.equal(classifyChange(DEFAULTS, { ...DEFAULTS, importStrategy: "fromEnvironment" }), "restart");
    assert.equal(classifyChange({ ...DEFAULTS, interpreter: "/a" }, DEFAULTS), "restart");
  });

  it("stops and starts on enable", () => {
    assert.equal(classifyChange(DEFAULTS, { ...DEFAULTS, enable: false }), "stop");
    assert.equal(classifyChange({ ...DEFAULTS, enable: false }, DEFAULTS), "start");
    assert.equal(classifyChange({ ...DEFAULTS, enable: false }, { ...DEFAULTS, enable: false, device: "cpu" }), "none");
  });

  it("pushes other settings to the running server", () => {
    for (const change of [{ device: "cpu" as const }, { probeTimeout: 9 }, { debounce: 0 }, { inlayHints: false }]) {
      assert.equal(classifyChange(DEFAULTS, { ...DEFAULTS, ...change }), "notify");
    }
  });

  it("does nothing when nothing changed", () => {
    assert.equal(classifyChange(DEFAULTS, { ...DEFAULTS }), "none");
  });

  it("knows every setting", () => {
    assert.deepEqual(SETTING_KEYS, ["enable", "device", "probeTimeout", "planBudget", "debounce", "inlayHints", "interpreter", "importStrategy"]);
  });
});
