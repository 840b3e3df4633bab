// Fills bundled/libs for the .vsix: the server's pinned pure-Python dependencies
// (client/bundled-requirements.txt, pure wheels only, no dependency resolution) and the shapelens
// package itself (server/shapelens). The extension puts that folder first on the user's
// interpreter's sys.path (bundled/tool/lsp_server.py), so the user's environment needs only torch.
// Usage: node client/scripts/bundle-libs.mjs   (npm run bundle; `npm run package` runs it first)
// The pip that runs it: $SHAPELENS_BUNDLE_PYTHON, else .venv/bin/python, else python3.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const libs = join(root, "bundled", "libs");
const venvPython = join(root, ".venv", "bin", "python");
const python = process.env.SHAPELENS_BUNDLE_PYTHON || (existsSync(venvPython) ? venvPython : "python3");

rmSync(libs, { recursive: true, force: true });
mkdirSync(libs, { recursive: true });
const args = [
  "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
  "--target", libs, "--no-deps", "--only-binary=:all:", "--implementation", "py", "--python-version", "3.11",
  "-r", join(root, "client", "bundled-requirements.txt"),
];
const pip = spawnSync(python, args, { stdio: "inherit", cwd: root });
if (pip.status !== 0) {
  console.error(`bundle-libs: \`${python} ${args.join(" ")}\` failed (exit ${pip.status ?? pip.error?.message})`);
  process.exit(1);
}
cpSync(join(root, "server", "shapelens"), join(libs, "shapelens"), {
  recursive: true,
  filter: (src) => !/__pycache__|\.pyc$/.test(src),
});
// Console scripts and caches have no use inside the extension. Nor have Jedi's stubs for
// third-party packages (requests, six, django, ...: 4,800 of its 5,900 files): torch ships its own
// sources and the standard library's stubs stay; Jedi skips a stub folder that is not there.
for (const junk of ["bin", "__pycache__", "jedi/third_party/typeshed/stubs", "jedi/third_party/django-stubs"]) {
  rmSync(join(libs, junk), { recursive: true, force: true });
}

function size(p) {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((n, e) => n + size(join(p, e)), 0) : s.size;
}
const top = readdirSync(libs).filter((e) => !e.endsWith(".dist-info")).sort();
console.log(`bundled/libs: ${top.join(", ")} (${(size(libs) / 1024 / 1024).toFixed(1)} MiB unpacked)`);
