import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

interface LintMatch {
  readonly Filename: string;
  readonly Level: string;
  readonly Message: string;
  readonly Rule: { readonly Id: string };
}

const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
/** Whether cfn-lint is on PATH; without it the lint tests are skipped, with one warning line. */
export const haveCfnLint = version.status === 0;
export const cfnLintVersion = version.stdout?.trim() || 'not on PATH';
if (!haveCfnLint) {
  // One line, so that a machine without cfn-lint never passes this silently.
  console.warn(
    'cfn-lint is not on PATH: the lint of the synthesized templates was SKIPPED (pip install cfn-lint to run it)',
  );
}

/**
 * The errors cfn-lint finds in the templates of a cloud assembly folder, one line each; warnings
 * are printed (CDK's redundant DependsOn, W3005, is one), not returned.
 */
export function cfnLintErrors(name: string, dir: string): string[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => join(dir, f));
  const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  // Exit codes are a bit mask of the levels found (2 error, 4 warning, 8 informational); 1 is a failure of cfn-lint itself.
  if (run.status === 1 || run.stdout.trim() === '')
    throw new Error(`cfn-lint failed to run (exit ${run.status}): ${run.stderr}`);
  const matches = JSON.parse(run.stdout) as LintMatch[];
  const warnings = matches.filter((m) => m.Level !== 'Error');
  if (warnings.length > 0) {
    console.log(
      `cfn-lint on the ${name}: ${warnings.length} warning(s)\n${warnings.map((w) => `  ${w.Rule.Id} ${w.Filename.split('/').pop()}: ${w.Message}`).join('\n')}`,
    );
  }
  return matches
    .filter((m) => m.Level === 'Error')
    .map((m) => `${m.Rule.Id} ${m.Filename.split('/').pop()}: ${m.Message}`);
}
