import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';

/**
 * The page's script: console/page/ bundled by esbuild with its libraries (preact, htm, dagre)
 * into one file, so the page needs nothing from the network. `npm run build` writes it beside the
 * built console/ (PREBUILT_PAGE): the installed package serves that file and has neither esbuild
 * nor the page's libraries. In the repository it is built in memory once per process on first
 * request; esbuild is loaded only then, so CLI commands that serve no page never load it.
 */

/** The bundle `npm run build` writes (buildPage); absent in the repository. */
export const PREBUILT_PAGE = join(__dirname, 'page.js');

const OPTIONS = {
  entryPoints: [join(__dirname, 'page', 'main.ts')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'silent',
} as const satisfies BuildOptions;

let built: Promise<string> | undefined;

export function pageBundle(): Promise<string> {
  built ??= (async () => {
    if (existsSync(PREBUILT_PAGE)) return readFileSync(PREBUILT_PAGE, 'utf8');
    const esbuild = require('esbuild') as typeof import('esbuild');
    const result = await esbuild.build({ ...OPTIONS, write: false });
    return result.outputFiles[0]!.text;
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}

/** Writes the page's bundle to `outfile`, as pageBundle builds it (`npm run build`: PREBUILT_PAGE of the built console/). */
export async function buildPage(outfile: string): Promise<void> {
  const esbuild = require('esbuild') as typeof import('esbuild');
  await esbuild.build({ ...OPTIONS, outfile, logLevel: 'warning' });
}
