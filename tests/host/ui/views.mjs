// What a user sees when a workflow opens: drives the real frontend in Debian's Chromium at
// each window size, opens every workflow from its file and from the Templates browser, and
// reports which nodes or groups are hidden (under the top bar, side bar, run bar, minimap, or
// off screen), the wiring, the socket colours, and screenshots. tests/test_workflows_ui.py and
// tests/host/make_workflows.py (--screenshots) read the report.
//
// usage: node views.mjs JOB.json
//   JOB: {url, chromium, pack, shots, workflows: [paths], viewports: [[w, h]], templates: bool,
//         run: [names to Run and screenshot afterwards], colour_types: [types], old_workflow: path|null,
//         without_script: bool}
// prints one JSON object on the last line of stdout.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hiddenParts, socketColours, wiringProblems } from './graph_checks.mjs';
import { closeDialogs, openApp, openTemplate } from './page.mjs';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const report = { views: [], workflows: [], colours: null, old_workflow: null, without_script: null };
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync'];

async function withPage(viewport, fn, { blockScript = false } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sgv-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: job.chromium, headless: true, viewport: { width: viewport[0], height: viewport[1] }, args,
  });
  try {
    if (blockScript) await ctx.route(`**/extensions/${job.pack}/js/**`, (route) => route.abort());
    const page = await openApp(ctx, job.url);
    return await fn(page);
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function look(page) {
  await closeDialogs(page);
  await page.waitForTimeout(600);
  return { ...(await page.evaluate(hiddenParts, {})), wiring: await page.evaluate(wiringProblems) };
}

// The status of the run the Run button starts: the one history entry that was not there before
// (the newest entry may be an earlier run's, which would end the wait before this one started).
async function runAndWait(page) {
  const history = async () => page.evaluate(async () => (await fetch('/history')).json());
  const before = new Set(Object.keys(await history()));
  await page.evaluate(async () => window.app.queuePrompt(0, 1));  // the Run button
  const deadline = Date.now() + (job.timeout_ms ?? 240000);
  while (Date.now() < deadline) {
    const entries = Object.entries(await history()).filter(([id]) => !before.has(id));
    const done = entries[0]?.[1]?.status?.status_str ?? null;
    if (done === 'success' || done === 'error') return done;
    await page.waitForTimeout(300);
  }
  return 'timeout';
}

const first = job.viewports[0];
for (const viewport of job.viewports) {
  await withPage(viewport, async (page) => {
    const tag = `${viewport[0]}x${viewport[1]}`;
    for (const file of job.workflows) {
      const name = path.basename(file, '.json');
      const workflow = JSON.parse(fs.readFileSync(file, 'utf8'));
      await page.evaluate(async ({ wf, name }) => window.app.loadGraphData(wf, true, true, name), { wf: workflow, name });
      const fromFile = await look(page);
      const shot = path.join(job.shots, `${name}@${tag}.png`);
      await page.screenshot({ path: shot });
      const entry = { name, viewport, source: 'file', ...fromFile, shot };
      report.views.push(entry);
      if (job.templates) {
        const found = await openTemplate(page, job.pack, name);
        report.views.push({ name, viewport, source: 'templates', found, ...(found ? await look(page) : {}) });
      }
      if (viewport === first) report.workflows.push({ name, shots: { opened: shot } });
    }
    if (viewport === first && job.colour_types) {
      const core = await page.evaluate(() => Object.fromEntries(
        Object.entries(window.LGraphCanvas.link_type_colors).filter(([, c]) => c)));
      const ours = await page.evaluate(socketColours, job.colour_types);
      // A theme switch reloads the palette, which blanks every type it does not name.
      await page.evaluate(async () => window.app.extensionManager.setting.set('Comfy.ColorPalette', 'light'));
      await page.waitForTimeout(800);
      const afterTheme = await page.evaluate(socketColours, job.colour_types);
      const defaults = await page.evaluate(() => ({ wire: window.app.canvas.default_link_color,
                                                    ...window.app.canvas.default_connection_color }));
      await page.evaluate(async () => window.app.extensionManager.setting.set('Comfy.ColorPalette', 'dark'));
      report.colours = { core, ours, after_theme: afterTheme, defaults };
      // Widget labels of every pack node, as a new node of each type shows them.
      report.labels = await page.evaluate((prefix) => Object.fromEntries(
        Object.keys(window.LiteGraph.registered_node_types).filter((t) => t.startsWith(prefix)).map((t) => {
          const node = window.LiteGraph.createNode(t);
          return [t, Object.fromEntries((node.widgets ?? []).map((w) => [w.name, w.label ?? w.name]))];
        })), 'StyleGANV_');
    }
  });
}

// Runs come after every view is checked: a finished run leaves a toast under the run bar.
for (const result of report.workflows.filter((w) => job.run?.includes(w.name))) {
  await withPage(first, async (page) => {
    const workflow = JSON.parse(fs.readFileSync(job.workflows.find((f) => path.basename(f, '.json') === result.name),
                                                'utf8'));
    await page.evaluate(async ({ wf, name }) => window.app.loadGraphData(wf, true, true, name),
                        { wf: workflow, name: result.name });
    await closeDialogs(page);
    result.status = await runAndWait(page);
    await page.waitForTimeout(2000);  // the Save Video preview loads its mp4
    result.videos_shown = await page.locator('video').evaluateAll((vs) => vs.filter((v) => v.offsetParent).length);
    result.shots.output = path.join(job.shots, `${result.name}-output.png`);
    await page.screenshot({ path: result.shots.output });
  });
}

if (job.without_script && job.workflows.length) {
  // The pack must work unchanged where its script does not load (blocked, or an older frontend):
  // the first workflow of `run` (the basic one) runs again with the script blocked.
  report.without_script = await withPage(first, async (page) => {
    const file = job.workflows.find((f) => job.run?.includes(path.basename(f, '.json'))) ?? job.workflows[0];
    const workflow = JSON.parse(fs.readFileSync(file, 'utf8'));
    await page.evaluate(async (wf) => window.app.loadGraphData(wf), workflow);
    await closeDialogs(page);
    const colours = await page.evaluate(socketColours, job.colour_types ?? []);
    return { name: path.basename(file, '.json'), status: await runAndWait(page), colours };
  }, { blockScript: true });
}

if (job.old_workflow) {
  // A workflow saved before the labels changed: same node ids, inputs and widget order.
  report.old_workflow = await withPage(first, async (page) => {
    const workflow = JSON.parse(fs.readFileSync(job.old_workflow, 'utf8'));
    await page.evaluate(async (wf) => window.app.loadGraphData(wf), workflow);
    await closeDialogs(page);
    return await page.evaluate(async () => {
      const { output } = await window.app.graphToPrompt();
      const response = await fetch('/prompt', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                body: JSON.stringify({ prompt: output, client_id: 'old-workflow' }) });
      const body = await response.json().catch(() => null);
      return { status: response.status, body, prompt: output };
    });
  });
}

console.log(JSON.stringify(report));
