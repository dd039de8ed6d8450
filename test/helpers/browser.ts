// Headless Chromium for the status page tests: Debian's package, installed by
// scripts/ensure-tools.sh when missing (each test file asks: files run in parallel, and
// none may count on another having installed it), launched with the flags a container
// needs, and a page whose script errors and blocked resources (CSP) are collected.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ROOT } from './cli.ts';

const CHROMIUM = '/usr/bin/chromium';
/** apt-get may have to fetch Chromium and its libraries. */
export const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** Chromium from Debian's package, installed when missing; a clear error when it cannot be. */
export function ensureChromium(): void {
  const r = spawnSync(join(ROOT, 'scripts/ensure-tools.sh'), ['chromium'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? (r.stderr || r.stdout).trim();
    throw new Error(`the status page tests need Chromium and could not install it: ${why}`);
  }
}

/**
 * Chromium (installed first when missing) and one page of `viewport`, its default
 * timeout `waitMs`; script errors and console errors go into `errors`.
 */
export async function openPage(
  viewport: { width: number; height: number },
  waitMs: number,
  errors: string[],
): Promise<{ browser: Browser; page: Page }> {
  ensureChromium();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
    ],
    timeout: 30_000,
  });
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(waitMs);
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return { browser, page };
}
