import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { discoverInterpreters, type DiscoveryFs } from "../src/discovery";

/** A fake file tree: the paths listed are files; folders are implied by them. */
function fakeFs(files: string[], texts: Record<string, string> = {}, links: Record<string, string> = {}): DiscoveryFs {
  const set = new Set(files);
  return {
    isFile: (p) => set.has(p),
    list: (dir) => {
      const prefix = dir.endsWith("/") ? dir : `${dir}/`;
      return [...new Set(files.filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length).split("/")[0]))];
    },
    read: (p) => texts[p],
    real: (p) => links[p] ?? p,
  };
}

const home = "/home/u";

describe("discoverInterpreters", () => {
  it("finds workspace venvs, conda envs, pyenv versions and Pythons on PATH, in that order", () => {
    const fs = fakeFs([
      "/work/proj/.venv/bin/python",
      "/work/proj/venv/bin/python",
      "/home/u/miniconda3/bin/python",
      "/home/u/miniconda3/envs/ml/bin/python",
      "/home/u/.pyenv/versions/3.11.9/bin/python",
      "/home/u/.pyenv/versions/3.12.4/bin/python",
      "/usr/bin/python3",
    ]);
    const found = discoverInterpreters({ workspaceFolders: ["/work/proj"], home, env: { PATH: "/usr/local/bin:/usr/bin" }, platform: "linux", fs });
    assert.deepEqual(found.map((c) => [c.kind, c.label, c.path]), [
      ["workspace", ".venv (proj)", "/work/proj/.venv/bin/python"],
      ["workspace", "venv (proj)", "/work/proj/venv/bin/python"],
      ["conda", "conda: base (miniconda3)", "/home/u/miniconda3/bin/python"],
      ["conda", "conda: ml", "/home/u/miniconda3/envs/ml/bin/python"],
      ["pyenv", "pyenv 3.12.4", "/home/u/.pyenv/versions/3.12.4/bin/python"],
      ["pyenv", "pyenv 3.11.9", "/home/u/.pyenv/versions/3.11.9/bin/python"],
      ["path", "python3 on PATH (/usr/bin)", "/usr/bin/python3"],
    ]);
  });

  it("reads conda's list of environments and the active one, and honours PYENV_ROOT", () => {
    const fs = fakeFs(["/data/envs/big/bin/python", "/opt/act/bin/python", "/pyenv/versions/3.13.0/bin/python"],
      { "/home/u/.conda/environments.txt": "/data/envs/big\n\n" });
    const found = discoverInterpreters({ workspaceFolders: [], home, env: { CONDA_PREFIX: "/opt/act", PYENV_ROOT: "/pyenv" }, platform: "linux", fs });
    assert.deepEqual(found.map((c) => c.label), ["conda: big", "conda: base (act)", "pyenv 3.13.0"]);
  });

  it("lists an interpreter once, however many ways lead to it", () => {
    const fs = fakeFs(["/work/proj/.venv/bin/python", "/usr/bin/python3", "/usr/bin/python"], {},
      { "/usr/bin/python": "/usr/bin/python3" });
    const found = discoverInterpreters({ workspaceFolders: ["/work/proj"], home, env: { PATH: "/usr/bin:/usr/bin" }, platform: "linux", fs });
    assert.deepEqual(found.map((c) => c.path), ["/work/proj/.venv/bin/python", "/usr/bin/python3"]);
  });

  it("skips what does not exist", () => {
    assert.deepEqual(discoverInterpreters({ workspaceFolders: ["/w"], home, env: {}, platform: "linux", fs: fakeFs([]) }), []);
  });

  it("uses Windows layouts on Windows", () => {
    const files = ["C:\\w\\.venv\\Scripts\\python.exe", "C:\\Python312\\python.exe"];
    const fs: DiscoveryFs = { isFile: (p) => files.includes(p), list: () => [], read: () => undefined };
    const found = discoverInterpreters({ workspaceFolders: ["C:\\w"], home: "C:\\Users\\u", env: { Path: "C:\\Python312" }, platform: "win32", fs });
    assert.deepEqual(found.map((c) => c.path), files);
  });
});
