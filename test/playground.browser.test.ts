import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { RULES_DIR, testApp } from './support/app.js';

/**
 * The playground in a real browser: Debian's Chromium driven by playwright-core (no browser download). Where no Chromium
 * is installed the suite reports itself skipped; .ci/run installs it.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.PLAYGROUND_SCREENSHOT;

describe.skipIf(!existsSync(CHROMIUM))(`the playground in Chromium (skipped when ${CHROMIUM} is missing)`, () => {
  let app: FastifyInstance;
  let browser: Browser;
  let base = '';

  beforeAll(async () => {
    app = await testApp();
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** The playground at `url`, a fixture patient picked and evaluated; page errors are collected in `errors`. */
  async function evaluateFixture(url: string, scenario: string, width: number) {
    const page = await browser.newPage({ viewport: { width, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/playground`);
    await page.waitForSelector(`#scenario option[value="${scenario}"]`, { state: 'attached' });
    await page.selectOption('#scenario', scenario);
    await page.click('#evaluate');
    return { page, errors };
  }

  it('shows the cards, the red flags table and the rules that fired for a fixture patient', async () => {
    const { page, errors } = await evaluateFixture(base, 'resolved-breast-cancer-urgent', 1280);
    await page.waitForSelector('.card .summary');
    expect(await page.textContent('.card .summary')).toMatch(/imaging is indicated now/);
    const table = await page.textContent('#facts table');
    expect(table).toMatch(/History of cancer\s*found/);
    expect(await page.textContent('#facts')).toMatch(/major-red-flag-found/);
    expect(await page.textContent('#version')).toMatch(/Rules \d+\.\d+\.\d+\+[0-9a-f]{12}/);

    // Another order for a patient without red flags: the conversation card appears, with its handout links.
    await page.selectOption('#scenario', 'acute-lbp-mri-not-indicated');
    await page.click('#evaluate');
    await page.locator('.card').nth(1).waitFor();
    expect(await page.textContent('#cards')).toMatch(/Talking with your patient about a scan/);
    if (SCREENSHOT) {
      mkdirSync(new URL('../docs/', import.meta.url).pathname, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
    }
    expect(errors).toEqual([]);
  }, 60_000);

  it('shows an edited copy of the rules beside the live ones, with what changed', async () => {
    const copyDir = mkdtempSync(join(tmpdir(), 'lbp-playground-copy-'));
    cpSync(RULES_DIR, copyDir, { recursive: true });
    const file = join(copyDir, 'red-flags.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"gte": 38.0,', '"gte": 39.0,'));
    const comparing = await testApp({ PLAYGROUND_COMPARE_RULES_DIR: copyDir });
    try {
      const url = await comparing.listen({ port: 0, host: '127.0.0.1' });
      const { page, errors } = await evaluateFixture(url, 'fever-opioid-use-disorder-urgent', 1400);
      await page.waitForSelector('#changes .changes li');
      expect(await page.textContent('#changes')).toMatch(/recommendation imaging-urgent becomes/);
      expect(await page.isVisible('#copy')).toBe(true);
      expect(await page.textContent('#copy-version')).toMatch(/Edited copy \d+\.\d+\.\d+\+[0-9a-f]{12}/);
      expect(await page.textContent('#cards .card .summary')).toMatch(/imaging is indicated now/);
      expect(await page.textContent('#copy-cards .card .summary')).not.toMatch(/imaging is indicated now/);
      if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-compare.png'), fullPage: false });
      expect(errors).toEqual([]);
    } finally {
      await comparing.close();
    }
  }, 60_000);
});
