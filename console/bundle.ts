import { join } from 'node:path';

/**
 * The page's script: console/page/ bundled by esbuild with its libraries (preact, htm, dagre)
 * into one file, built in memory once per process on first request, so the page needs nothing
 * from the network. esbuild is loaded only here: CLI commands that serve no page never load it.
 */

let built: Promise<string> | undefined;

export function pageBundle(): Promise<string> {
  built ??= (async () => {
    const esbuild = require('esbuild') as typeof import('esbuild');
    const result = await esbuild.build({
      entryPoints: [join(__dirname, 'page', 'main.ts')],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    return result.outputFiles[0]!.text;
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}
