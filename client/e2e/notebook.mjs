// The notebook scenario of the end-to-end test (run.mjs runs it; SHAPELENS_E2E_ONLY=notebook
// runs it alone): seed 000 example 2 as a Jupyter notebook (markdown / imports with %magics /
// the class / construction and forward with !shell and ?help lines), opened in VS Code's
// built-in notebook editor. The class cell gets the squiggle on `embed_dim`, hovering
// `projected` shows [1, 10, 256], the inlay hint is there, the lightbulb's quick fix rewrites the
// cell's line, and the squiggle goes away. The screenshot docs/images/vscode-notebook.png is
// written when missing or when SHAPELENS_E2E_UPDATE_SCREENSHOT=1.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const NOTEBOOK_SOURCE = path.join(ROOT, "tests", "data", "notebooks", "seed000_ex2.ipynb");
export const NOTEBOOK = "seed000_ex2_notebook.ipynb"; // its name in the project folder
const IMAGE = path.join(ROOT, "docs", "images", "vscode-notebook.png");
// The rendered lines of every cell editor: where run.mjs's textBox looks in a notebook.
const CELL_LINES = ".notebook-editor .cell .monaco-editor .view-lines .view-line";


async function cellLineText(page, lineIncludes) {
  return page.evaluate((lineIncludes) => {
    const norm = (s) => s.replace(/\u00a0/g, " ");
    const line = [...document.querySelectorAll(".notebook-editor .cell .monaco-editor .view-lines .view-line")]
      .find((l) => norm(l.textContent).includes(lineIncludes));
    return line ? norm(line.textContent) : null;
  }, lineIncludes);
}

/** Opens the notebook with Quick Open and waits for the notebook editor to render its cells. */
async function openNotebook(page, h) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+P");
    const input = page.locator(".quick-input-widget input");
    if (!(await input.waitFor({ state: "visible", timeout: 10000 }).then(() => true, () => false))) continue;
    await input.fill(NOTEBOOK);
    const row = page.locator(".quick-input-widget .monaco-list-row", { hasText: NOTEBOOK }).first();
    if (!(await row.waitFor({ state: "visible", timeout: 15000 }).then(() => true, () => false))) continue;
    await page.keyboard.press("Enter");
    const shown = await h.until("the notebook's class cell to render", () => h.textBox(page, "self.linear = nn.Linear(", "embed_dim", "Linear(", CELL_LINES), { timeout: 30000 })
      .then(() => true, () => false);
    if (shown) return;
  }
  throw new Error(`could not open ${NOTEBOOK} in the notebook editor`);
}

export async function notebookScenario(ctx, h) {
  const { page } = ctx;
  const name = "notebook";
  await openNotebook(page, h);
  h.check((await page.locator(".notebook-editor").count()) > 0, "the .ipynb opened in VS Code's notebook editor");
  await h.shot(page, `${name}-1-opened`);

  // The Problems entry, from the class cell.
  const problems = await h.openProblems(page);
  const entry = problems.locator(".monaco-list-row", { hasText: "expects in_features=128" }).first();
  await entry.waitFor({ state: "visible", timeout: 180000 });
  const entryText = (await entry.innerText()).replace(/\s+/g, " ");
  h.check(/shapelens/.test(entryText) && /in_features=128/.test(entryText), "Problems lists the mismatch found in the notebook", entryText);
  h.check(/\[6, 33\]|Ln 6, Col 33/.test(entryText), "the entry points at line 6, column 33 of the class cell (embed_dim)", entryText);
  await page.keyboard.press("Control+J"); // the panel away: the notebook gets the room
  await h.sleep(500);

  // The squiggle sits under `embed_dim` of `nn.Linear(embed_dim, 256)` in the class cell.
  const word = await h.until("the embed_dim line", () => h.textBox(page, "self.linear = nn.Linear(", "embed_dim", "Linear(", CELL_LINES));
  const sq = await h.until("an error squiggle in the cell", async () => {
    const all = await h.squiggles(page, "error");
    return all.find((s) => s.y >= word.lineTop - 2 && s.y + s.height <= word.lineBottom + 2);
  }, { timeout: 60000 });
  h.check(
    Math.abs(sq.x - word.x) <= 3 && Math.abs(sq.x + sq.width - (word.x + word.width)) <= 3,
    "the cell's error squiggle covers exactly `embed_dim` in nn.Linear(embed_dim, 256)",
    `squiggle x=${sq.x.toFixed(1)}..${(sq.x + sq.width).toFixed(1)}, embed_dim x=${word.x.toFixed(1)}..${(word.x + word.width).toFixed(1)}`,
  );
  const hint = await h.until("the inlay hint on `projected`", async () => {
    const t = await cellLineText(page, "= self.projection(embedded)");
    return t && /projected: \[1, 10, 256\]/.test(t) ? t : null;
  }, { timeout: 30000 });
  h.check(true, "the inlay hint `projected: [1, 10, 256]` is shown in the cell", hint.trim());

  // Hover `projected`.
  const projected = await h.textBox(page, "= self.projection(embedded)", "projected", "", CELL_LINES);
  const hoverText = await h.hoverOver(page, projected, "256");
  h.check(/\[1, 10, 256\]/.test(hoverText.replace(/\s+/g, " ")), "hovering `projected` in the cell shows [1, 10, 256]", hoverText.replace(/\s+/g, " "));
  // The picture: the class cell from its first line, with the squiggle and the hover below.
  const editorBox = await page.locator(".part.editor").boundingBox();
  const classLine = await h.textBox(page, "class MismatchedEmbeddingModel", "class", "", CELL_LINES);
  const top = Math.max(editorBox.y, classLine.lineTop - 150); // the end of the magics cell too
  const picture = await h.shot(page, `${name}-2-squiggle-hover`, {
    clip: { x: editorBox.x, y: top, width: Math.min(editorBox.width, 900), height: Math.min(editorBox.y + editorBox.height - top, 440) },
  });
  if (!fs.existsSync(IMAGE) || process.env.SHAPELENS_E2E_UPDATE_SCREENSHOT === "1") {
    fs.mkdirSync(path.dirname(IMAGE), { recursive: true });
    fs.copyFileSync(picture, IMAGE);
    h.log(`wrote ${path.relative(ROOT, IMAGE)}`);
  }

  // The quick fix from the lightbulb edits the cell.
  await page.mouse.move(10, 10);
  await page.keyboard.press("Escape");
  await h.openQuickFix(page, () => h.textBox(page, "self.linear = nn.Linear(", "embed_dim", "Linear(", CELL_LINES));
  const action = page.locator(".action-widget .monaco-list-row", { hasText: "embed_dim * 2" }).first();
  await action.waitFor({ state: "visible", timeout: 15000 });
  await h.shot(page, `${name}-3-lightbulb-menu`);
  const actionTitle = (await action.innerText()).trim();
  await action.click();
  const fixed = await h.until("the fix to be applied in the cell", async () => {
    const t = await cellLineText(page, "self.linear = nn.Linear(");
    return t && t.includes("embed_dim * 2") ? t : null;
  }, { timeout: 15000 });
  h.check(fixed.includes("nn.Linear(embed_dim * 2, 256)"), `the quick fix "${actionTitle}" rewrote the cell's line`, fixed.trim());
  await h.until("no error squiggle", async () => (await h.squiggles(page, "error")).length === 0, { timeout: 60000 });
  h.check(true, "after the fix the cell's squiggle is gone (the notebook was probed again)");
  await h.shot(page, `${name}-4-fixed`);
}
