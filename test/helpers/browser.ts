import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/**
 * Browser tests drive Debian's chromium through playwright-core (no browser download). A machine
 * without it skips them with one line; CI sets STEPDEPLOY_REQUIRE_BROWSER=1 (.ci/run), so there a
 * missing browser fails instead of skipping.
 */

export const CHROMIUM = process.env.STEPDEPLOY_CHROMIUM || '/usr/bin/chromium';
export const REQUIRE_BROWSER_ENV = 'STEPDEPLOY_REQUIRE_BROWSER';

export function describeInBrowser(name: string, body: () => void): void {
  if (existsSync(CHROMIUM) || process.env[REQUIRE_BROWSER_ENV] === '1') {
    describe(name, body);
    return;
  }
  process.stderr.write(`skipped "${name}": no browser at ${CHROMIUM} (apt-get install -y chromium)\n`);
  describe.skip(name, body);
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no browser at ${CHROMIUM} and ${REQUIRE_BROWSER_ENV}=1: install it (apt-get install -y chromium)`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}
