import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { serverLaunch } from "../src/launch";

describe("serverLaunch (import strategy)", () => {
  const ext = "/ext/shapelens-0.1.0";

  it("runs the bundled launcher in the user's interpreter, bundled libs first by default", () => {
    const l = serverLaunch("/p/.venv/bin/python", "useBundled", ext, true, { PATH: "/usr/bin" });
    assert.equal(l.command, "/p/.venv/bin/python");
    assert.deepEqual(l.args, ["/ext/shapelens-0.1.0/bundled/tool/lsp_server.py"]);
    assert.equal(l.env.SHAPELENS_IMPORT_STRATEGY, "useBundled");
    assert.equal(l.env.PATH, "/usr/bin");
    assert.equal(l.env.PYTHONUNBUFFERED, "1");
    assert.equal(l.note, undefined);
  });

  it("passes fromEnvironment through", () => {
    const l = serverLaunch("python3", "fromEnvironment", ext, true, {});
    assert.equal(l.strategy, "fromEnvironment");
    assert.equal(l.env.SHAPELENS_IMPORT_STRATEGY, "fromEnvironment");
  });

  it("falls back to the environment, and says so, when the extension has no bundle", () => {
    const l = serverLaunch("python3", "useBundled", ext, false, {});
    assert.equal(l.strategy, "fromEnvironment");
    assert.match(l.note ?? "", /no bundled server/);
  });
});
