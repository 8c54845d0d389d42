// Turns API-format prompts into UI-format workflow files the way ComfyUI itself does it
// (the frontend's app.loadApiJson, then app.graphToPrompt), lays the nodes out, and takes a
// JPEG thumbnail of the graph. Used by tests/host/make_workflows.py, not by the tests.
//
// usage: node export.mjs JOB.json   (JOB: {url, chromium, items: [{name, prompt, layout, out_json, out_jpg}]})
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sgv-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: job.chromium, headless: true, viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(job.url + '/');
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.StyleGANV_Render,
                             null, { timeout: 90000 });
  await page.waitForTimeout(2500);
  for (let i = 0; i < 4 && await page.locator('[role="dialog"]').first().isVisible().catch(() => false); i++) {
    await page.keyboard.press('Escape');
    await page.waitForTimeout(400);
  }
  for (const item of job.items) {
    await page.evaluate(async ({ prompt, name }) => window.app.loadApiJson(prompt, name), item);
    const workflow = await page.evaluate(({ layout }) => {
      const graph = window.app.graph;
      for (const node of graph._nodes) {
        const place = layout[String(node.id)];
        if (place) node.pos = [place[0], place[1]];
        if (place && place[2]) node.size = [place[2], node.computeSize()[1]];
        // Example workflows must reproduce: seeds stay fixed instead of randomising after each run.
        for (const w of node.widgets ?? []) if (w.name === 'control_after_generate') w.value = 'fixed';
      }
      graph.setDirtyCanvas(true, true);
      return window.app.graph.serialize();
    }, item);
    fs.writeFileSync(item.out_json, JSON.stringify(workflow, null, 2) + '\n');
    // Thumbnail: the graph canvas alone (no dialogs or banners), fitted and cropped to the nodes.
    const jpeg = await page.evaluate(async () => {
      const nodes = window.app.graph._nodes;
      const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1] - 30));
      const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
      const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
      const canvas = window.app.canvas;
      const w = canvas.canvas.width, h = canvas.canvas.height, margin = 30;
      const scale = Math.min((w - 2 * margin) / (x1 - x0), (h - 2 * margin) / (y1 - y0), 1.5);
      canvas.render_info = false;
      canvas.ds.scale = scale;
      canvas.ds.offset = [margin / scale - x0, margin / scale - y0];
      canvas.draw(true, true);
      const crop = document.createElement('canvas');
      crop.width = Math.round((x1 - x0) * scale + 2 * margin);
      crop.height = Math.round((y1 - y0) * scale + 2 * margin);
      crop.getContext('2d').drawImage(canvas.canvas, 0, 0, crop.width, crop.height, 0, 0, crop.width, crop.height);
      return crop.toDataURL('image/jpeg', 0.85);
    });
    fs.writeFileSync(item.out_jpg, Buffer.from(jpeg.split(',')[1], 'base64'));
    console.log('wrote', item.out_json, item.out_jpg);
  }
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
