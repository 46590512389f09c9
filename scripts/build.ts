import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildPage } from '../console/bundle';
import { bundleTask } from '../infra/task-function';

/**
 * `npm run build` (and `npm pack`, through prepack): the package in dist/, laid out as the
 * repository is, so that every `__dirname`-relative path of the code finds the same files there —
 * JavaScript and type declarations (tsc), the files the code reads at run time, each task's
 * handler bundled for Lambda (dist/lambda/<task>/) and the console page's script
 * (dist/console/page.js). Nothing in dist/ needs tsx, TypeScript or esbuild to run.
 */

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');

/** Read at run time beside the code that reads them (workflows/definition.ts, local/runtime.ts, infra/, console/server.ts, local/webhooks.ts). */
const FILES = [
  'cli/bin.js',
  'local/post-receive.js',
  'workflows/deploy-pipeline.asl.json',
  'buildspecs',
  'console/page/style.css',
];

async function main(): Promise<void> {
  const started = Date.now();
  rmSync(DIST, { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  for (const file of FILES) cpSync(join(ROOT, file), join(DIST, file), { recursive: true });
  const tasks = readdirSync(join(ROOT, 'tasks')).filter((task) => existsSync(join(ROOT, 'tasks', task, 'handler.ts')));
  await Promise.all([
    ...tasks.map((task) => bundleTask(task, join(DIST, 'lambda', task))),
    buildPage(join(DIST, 'console', 'page.js')),
  ]);
  console.log(
    `built dist/ (${tasks.length} task bundles, the console page) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
