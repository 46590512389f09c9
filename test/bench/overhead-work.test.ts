import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { overheadWork } from '../../bench/overhead';
import { configSchema } from '../../shared/config';

/** The overhead figure compares an execution with a bash script: both must run the same commands, and only the measured environment may sleep. */
describe('bench: the overhead work', () => {
  const work = overheadWork({ buildSleeps: [0.1, 0.1], deploySleeps: [0.1, 0.1] });
  const commandsOf = (buildspec: string): string[] =>
    (parse(buildspec) as { phases: { build: { commands: string[] } } }).phases.build.commands;
  const buildspecCommands = [...commandsOf(work.buildspecs.build), ...commandsOf(work.buildspecs.deploy)];
  const timedBash = (script: string, env: Record<string, string>): number => {
    const start = performance.now();
    execFileSync('bash', ['-c', script], { env: { ...process.env, ...env }, stdio: 'ignore' });
    return performance.now() - start;
  };

  test('the bash script runs the buildspecs commands, in order, after setting the measured seconds', () => {
    const lines = work.script.trim().split('\n');
    expect(lines[0]).toBe('set -e');
    expect(lines.slice(1, 5)).toEqual([
      'BUILD_SLEEP_1=0.1',
      'BUILD_SLEEP_2=0.1',
      'DEPLOY_SLEEP_1=0.1',
      'DEPLOY_SLEEP_2=0.1',
    ]);
    expect(lines.slice(5)).toEqual(buildspecCommands);
    expect(buildspecCommands).toEqual([
      'sleep "$BUILD_SLEEP_1"',
      'sleep "$BUILD_SLEEP_2"',
      'sleep "$DEPLOY_SLEEP_1"',
      'sleep "$DEPLOY_SLEEP_2"',
    ]);
  });

  test('the commands sleep the work in the measured environment and not in the warm-up one', () => {
    expect(timedBash(work.script, {})).toBeGreaterThanOrEqual(400);
    expect(timedBash(['set -e', ...buildspecCommands].join('\n'), work.variables.measured)).toBeGreaterThanOrEqual(400);
    // What each command would sleep, with `sleep` replaced by an echo: no clock, so a loaded machine cannot fail it.
    const sleeps = (env: Record<string, string>): string[] =>
      execFileSync('bash', ['-c', ['sleep() { echo "$1"; }', 'set -e', ...buildspecCommands].join('\n')], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      })
        .trim()
        .split('\n');
    expect(sleeps(work.variables.warmup)).toEqual(['0', '0', '0', '0']);
    expect(sleeps(work.variables.measured)).toEqual(['0.1', '0.1', '0.1', '0.1']);
  });

  test('the variables are valid environment variables in stepdeploy.config.yml', () => {
    const config = parse(readFileSync(join(__dirname, '..', '..', 'stepdeploy.config.yml'), 'utf8'));
    config.environments.acceptance.variables = work.variables.measured;
    config.environments.preproduction.variables = work.variables.warmup;
    const parsed = configSchema.parse(config);
    expect(parsed.environments.acceptance!.variables).toEqual({
      BUILD_SLEEP_1: '0.1',
      BUILD_SLEEP_2: '0.1',
      DEPLOY_SLEEP_1: '0.1',
      DEPLOY_SLEEP_2: '0.1',
    });
    expect(Object.values(parsed.environments.preproduction!.variables)).toEqual(['0', '0', '0', '0']);
  });
});
