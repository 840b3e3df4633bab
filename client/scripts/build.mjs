// Builds the extension (client/src/extension.ts -> dist/extension.js, one CommonJS file with
// vscode-languageclient inlined; `vscode` stays external) or the unit tests
// (client/test/*.test.ts -> out/test/*.test.js, run by `node --test out/test/`).
// Usage: node client/scripts/build.mjs extension [--minify] | tests
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const what = process.argv[2] ?? "extension";
const minify = process.argv.includes("--minify");

const common = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node18",
  external: ["vscode"],
  logLevel: "warning",
  absWorkingDir: root,
};

if (what === "extension") {
  await esbuild.build({
    ...common,
    entryPoints: ["client/src/extension.ts"],
    outfile: "dist/extension.js",
    sourcemap: !minify,
    minify,
  });
  console.log(`built dist/extension.js${minify ? " (minified)" : ""}`);
} else if (what === "tests") {
  const tests = readdirSync(join(root, "client", "test"))
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => `client/test/${f}`);
  await esbuild.build({ ...common, entryPoints: tests, outdir: "out/test", sourcemap: "inline" });
  console.log(`built ${tests.length} test files into out/test/`);
} else {
  console.error(`unknown target ${what}: use extension or tests`);
  process.exit(2);
}
