// Turns API-format prompts into UI-format workflow files the way ComfyUI itself does it (the
// frontend's app.loadApiJson, then the graph's own serialisation), lays the nodes out in named
// groups with a note, and saves the view fitted to a 1280x800 window. Used by
// tests/host/make_workflows.py, not by the tests.
//
// usage: node export.mjs JOB.json
//   JOB: {url, chromium, viewport: [w, h], items: [{name, prompt, layout, out_json}],
//         node_defs: {type: definition in /object_info's format}}
// node_defs are nodes of packs the host lacks: registered in this page only, so that the
// frontend builds their widgets and sockets as the pack would; the files keep their types, and a
// frontend without the pack shows them as missing.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyLayout, fitView, hiddenParts, wiringProblems } from './graph_checks.mjs';
import { closeDialogs, openApp } from './page.mjs';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sgv-chromium-'));
const [width, height] = job.viewport;
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: job.chromium, headless: true, viewport: { width, height },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await openApp(ctx, job.url);
  await page.evaluate(async (defs) => {
    for (const [type, def] of Object.entries(defs)) await window.app.registerNodeDef(type, def);
  }, job.node_defs ?? {});
  for (const item of job.items) {
    await page.evaluate(async ({ prompt, name }) => window.app.loadApiJson(prompt, name), item);
    await page.waitForTimeout(1500);  // loaders' previews (Load Image, Load Video) load and size their nodes
    await page.evaluate(applyLayout, item.layout);
    await closeDialogs(page);
    await page.waitForTimeout(300);
    const view = await page.evaluate(fitView, item.layout.fit);
    await page.waitForTimeout(300);
    const problems = await page.evaluate(wiringProblems);
    const { hidden } = await page.evaluate(hiddenParts, {});
    const workflow = await page.evaluate(() => window.app.graph.serialize());
    workflow.extra = { ...workflow.extra, ds: { scale: view.scale, offset: view.offset } };
    fs.writeFileSync(item.out_json, JSON.stringify(workflow, null, 2) + '\n');
    console.log('wrote', item.out_json, `scale ${view.scale.toFixed(2)}`);
    for (const p of problems) console.error(`${item.name}: ${p}`);
    for (const h of hidden) console.error(`${item.name}: ${h.kind} '${h.title}' is partly hidden at ${h.first}`);
    failed ||= problems.length > 0 || hidden.length > 0;
  }
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
