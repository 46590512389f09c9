import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { serveConsole } from '../../cli/local-serve';
import type { Target } from '../../cli/target';
import { launchBrowser } from './browser';
import type { TestRuntime } from './local-runtime';

export interface OpenConsole {
  /** The CLI's target for the runtime: what the console's server holds. */
  readonly target: Target;
  readonly browser: Browser;
  readonly page: Page;
  /** The page's root, `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** Every dialog the page opened (each dismissed): a page under test should open none. */
  readonly dialogs: string[];
  close(): Promise<void>;
}

/** The console served at `/` of a test runtime's endpoint, as `local serve` does, and a browser page on it. */
export async function openConsole(rt: TestRuntime): Promise<OpenConsole> {
  const target = await serveConsole(rt.runtime, join(rt.dir, 'stepdeploy.config.yml'));
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return {
    target,
    browser,
    page,
    url: `${rt.runtime.endpoint}/`,
    dialogs,
    async close() {
      await browser.close();
      await target.close();
    },
  };
}
