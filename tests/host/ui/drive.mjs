// Drives the real ComfyUI frontend in Debian's Chromium (npm playwright-core, no downloaded
// browsers) the way a user would: open the page, load each UI-format workflow file, check
// that every node type is known to the frontend, press "Queue", and report what the server
// answered. The Python test reads the report and checks the outputs on disk.
//
// usage: node drive.mjs JOB.json
//   JOB: {url, chromium, shots, pack, workflows: [paths], overrides: {name: {nodeType: {widget: value}}}}
// prints one JSON object on the last line of stdout.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeDialogs as closeOpenDialogs } from './page.mjs';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sgv-chromium-'));
const report = { workflows: [], templates: null, console_errors: [] };

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: job.chromium, headless: true, viewport: { width: 1600, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  // Every queue from the UI goes through POST /prompt: keep the server's answers.
  const queued = [];
  page.on('response', async (r) => {
    if (r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/prompt')) {
      let body = null;
      try { body = await r.json(); } catch { body = await r.text().catch(() => null); }
      queued.push({ status: r.status(), body });
    }
  });

  await page.goto(job.url + '/');
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types,
                             null, { timeout: 90000 });
  await page.waitForTimeout(2500);  // the first-run Templates dialog opens late; close it
  const closeDialogs = () => closeOpenDialogs(page);
  await closeDialogs();

  // The Templates browser must list the pack's workflows (served from workflows/).
  report.templates = await page.evaluate(async () => (await fetch('/api/workflow_templates')).json());
  if (job.pack) {
    await page.evaluate(() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates'));
    await page.waitForTimeout(1500);
    const entry = page.getByText(job.pack, { exact: true }).first();
    report.templates_entry_visible = await entry.isVisible().catch(() => false);
    if (report.templates_entry_visible) {
      await entry.click();
      await page.waitForTimeout(1500);
      const titles = {};
      for (const wf of job.workflows) {
        const name = path.basename(wf, '.json');
        titles[name] = await page.getByText(name).first().isVisible().catch(() => false);
      }
      report.templates_titles_visible = titles;
    }
    await page.screenshot({ path: path.join(job.shots, 'templates.png') });
    await closeDialogs();
  }

  for (const file of job.workflows) {
    const name = path.basename(file, '.json');
    const workflow = JSON.parse(fs.readFileSync(file, 'utf8'));
    const result = { name, file };
    const pageErrors = [];
    const onError = (e) => pageErrors.push(String(e));
    page.on('pageerror', onError);
    await page.evaluate(async (wf) => window.app.loadGraphData(wf), workflow);
    await page.waitForTimeout(500);
    // Edit widgets as a user would before pressing Run (CI shortens the long example).
    result.overridden = await page.evaluate((changes) => {
      const done = [];
      for (const node of window.app.graph._nodes) {
        for (const [name, value] of Object.entries(changes[node.type] ?? {})) {
          const widget = node.widgets?.find((w) => w.name === name);
          if (widget) { widget.value = value; widget.callback?.(value); done.push(`${node.type}.${name}=${value}`); }
        }
      }
      return done;
    }, job.overrides?.[name] ?? {});
    result.missing_in_frontend = await page.evaluate((wf) =>
      [...new Set(wf.nodes.map((n) => n.type))].filter((t) => !window.LiteGraph.registered_node_types[t]), workflow);
    result.loaded_types = await page.evaluate(() => window.app.graph._nodes.map((n) => n.type).sort());
    // The frontend pops a "missing nodes" dialog when something is unknown: it must not appear.
    result.missing_dialog = await page.getByText('missing', { exact: false }).first().isVisible().catch(() => false);
    await closeDialogs();
    const before = queued.length;
    await page.evaluate(async () => window.app.queuePrompt(0, 1));  // the Run button
    const t0 = Date.now();
    while (queued.length === before && Date.now() - t0 < 20000) await page.waitForTimeout(100);
    result.queue_response = queued[before] ?? null;
    const promptId = result.queue_response?.body?.prompt_id;
    if (promptId) {
      const deadline = Date.now() + (job.timeout_ms ?? 240000);
      while (Date.now() < deadline) {
        const h = await page.evaluate(async (id) => (await (await fetch('/history/' + id)).json())[id], promptId);
        const s = h?.status?.status_str;
        if (s === 'success' || s === 'error') { result.status = s; break; }
        await page.waitForTimeout(250);
      }
      result.prompt_id = promptId;
      await page.waitForTimeout(1000);  // let previews render for the screenshot
    }
    page.off('pageerror', onError);
    result.page_errors = pageErrors;
    await closeDialogs();
    // Output previews the user sees on the nodes (SaveVideo, Render to File: a <video> player).
    result.videos_shown = await page.locator('video').evaluateAll((vs) => vs.filter((v) => v.offsetParent).length);
    await page.screenshot({ path: path.join(job.shots, name + '.png') });
    if (result.prompt_id) {
      const promptId = result.prompt_id;
      // Drop the first mp4 it wrote back into the UI, as a user would: the graph must come back.
      result.restored_types = await page.evaluate(async (id) => {
        const outputs = (await (await fetch('/history/' + id)).json())[id]?.outputs ?? {};
        const item = Object.values(outputs).flatMap((o) => o.images ?? []).find((i) => i.filename.endsWith('.mp4'));
        if (!item) return null;
        const query = new URLSearchParams({ filename: item.filename, subfolder: item.subfolder, type: item.type });
        const blob = await (await fetch('/view?' + query)).blob();
        window.app.graph.clear();  // so that only the file can bring the nodes back
        await window.app.handleFile(new File([blob], item.filename, { type: 'video/mp4' }));
        await new Promise((r) => setTimeout(r, 500));
        return window.app.graph._nodes.map((n) => n.type).sort();
      }, promptId);
    }
    report.workflows.push(result);
  }
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
