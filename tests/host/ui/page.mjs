// Opening the ComfyUI frontend as a first-time user sees it, for the scripts in this folder.

// The first-run Templates dialog (and others) opens late; close whatever is open.
export async function closeDialogs(page) {
  for (let i = 0; i < 6; i++) {
    const dialog = page.locator('[role="dialog"]').first();
    if (!await dialog.isVisible().catch(() => false)) break;
    const close = dialog.locator('button[aria-label="Close"], .p-dialog-close-button, button:has(.pi-times)').first();
    if (await close.isVisible().catch(() => false)) await close.click().catch(() => {});
    else await page.keyboard.press('Escape');
    await page.waitForTimeout(400);
  }
}

// The app's page, once the graph and this pack's nodes are registered and the dialogs closed.
export async function openApp(ctx, url) {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(url + '/');
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.StyleGANV_Render,
                             null, { timeout: 90000 });
  await page.waitForTimeout(2500);
  await closeDialogs(page);
  return page;
}

// Opens a pack's template from the Templates browser as a user does: the pack's entry under
// Extensions, then the card with the template's title. True when the card was found.
export async function openTemplate(page, pack, name) {
  // Each step waits for what it needs to see (up to 15 s on a loaded machine), never a fixed time:
  // a view is then settled by look()'s own pause.
  const visible = (locator) => locator.waitFor({ state: 'visible', timeout: 15000 }).then(() => true, () => false);
  await page.evaluate(() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates'));
  const dialog = page.locator('[role="dialog"]').first();  // not the same words in the tabs behind it
  const entry = dialog.getByText(pack, { exact: true }).first();
  if (!await visible(entry)) return false;
  await entry.click();
  const card = dialog.getByText(name, { exact: true }).first();
  if (!await visible(card)) return false;
  await card.click();
  await page.waitForFunction(() => !document.querySelector('[role="dialog"]'), null, { timeout: 20000 })
    .catch(() => {});
  return true;
}
