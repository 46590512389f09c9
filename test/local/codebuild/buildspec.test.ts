import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildspecError, parseBuildspec } from '../../../local/codebuild';

const repoBuildspec = (name: string): string => readFileSync(join(__dirname, '../../../buildspecs', name), 'utf8');

describe('parseBuildspec', () => {
  test.each(['fetch-source.yml', 'build.yml', 'deploy.yml'])('accepts the repository buildspec %s', (name) => {
    const spec = parseBuildspec(repoBuildspec(name));

    expect(spec.shell).toBe('bash');
    expect(spec.phases.build?.commands.length).toBeGreaterThan(0);
  });

  test('reads fetch-source.yml as CodeBuild does', () => {
    const spec = parseBuildspec(repoBuildspec('fetch-source.yml'));

    expect(spec.exportedVariables).toEqual(['STEPDEPLOY_COMMIT']);
    expect(spec.artifacts).toEqual({
      files: ['**/*'],
      excludePaths: ['.git/**/*'],
      discardPaths: false,
      name: '$CODEBUILD_RESOLVED_SOURCE_VERSION.zip',
    });
  });

  test('reads YAML 1.1 yes/no, scalar variables, finally and on-failure', () => {
    const spec = parseBuildspec(
      [
        'version: 0.2',
        'env:',
        '  variables:',
        '    PORT: 8080',
        '    FLAG: "yes"',
        'phases:',
        '  build:',
        '    on-failure: CONTINUE',
        '    commands:',
        '      - make',
        '    finally:',
        '      - echo done',
        'artifacts:',
        '  files: [dist/**/*]',
        '  discard-paths: yes',
        '  base-directory: out',
      ].join('\n'),
    );

    expect(spec.shell).toBe('/bin/sh');
    expect(spec.variables).toEqual({ PORT: '8080', FLAG: 'yes' });
    expect(spec.phases.build).toEqual({ commands: ['make'], finally: ['echo done'], onFailure: 'CONTINUE' });
    expect(spec.artifacts).toMatchObject({ discardPaths: true, baseDirectory: 'out', files: ['dist/**/*'] });
  });

  test('accepts artifacts.enable-symlinks: yes, which local zips always do, as fetch-source.yml sets it', () => {
    expect(() =>
      parseBuildspec(
        'version: 0.2\nphases:\n  build:\n    commands: [true]\nartifacts:\n  files: [x]\n  enable-symlinks: yes\n',
      ),
    ).not.toThrow();
    expect(repoBuildspec('fetch-source.yml')).toMatch(/^ {2}enable-symlinks: yes$/m);
  });

  test.each([
    ['env.secrets-manager', 'env:\n  secrets-manager:\n    T: id:key\n'],
    ['env.parameter-store', 'env:\n  parameter-store:\n    T: /p\n'],
    ['run-as', 'run-as: builder\n'],
    ['reports', 'reports:\n  group:\n    files: [x]\n'],
    ['cache', 'cache:\n  paths: [x]\n'],
    ['batch', 'batch:\n  fast-fail: true\n'],
    [
      'phases.install.runtime-versions',
      'phases:\n  install:\n    runtime-versions:\n      nodejs: 20\n    commands: [true]\n',
    ],
    ['phases.build.run-as', 'phases:\n  build:\n    run-as: builder\n    commands: [true]\n'],
    ['artifacts.secondary-artifacts', 'artifacts:\n  files: [x]\n  secondary-artifacts: {}\n'],
    ['artifacts.enable-symlinks "no"', 'artifacts:\n  files: [x]\n  enable-symlinks: "no"\n'],
    ['env.shell', 'env:\n  shell: zsh\n'],
    ['phases.deploy', 'phases:\n  deploy:\n    commands: [true]\n'],
  ])('fails on %s, naming it and the supported subset', (key, fragment) => {
    const base = fragment.startsWith('phases:')
      ? 'version: 0.2\n'
      : 'version: 0.2\nphases:\n  build:\n    commands: [true]\n';

    const parse = (): unknown => parseBuildspec(base + fragment);

    expect(parse).toThrow(BuildspecError);
    expect(parse).toThrow(key);
    expect(parse).toThrow('Supported subset: version (0.2), env.shell (bash | /bin/sh)');
  });

  test.each([
    ['version 0.1', 'version: 0.1\nphases:\n  build:\n    commands: [true]\n', 'version must be 0.2'],
    ['no version', 'phases:\n  build:\n    commands: [true]\n', 'version is required'],
    [
      'a bad on-failure',
      'version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [true]\n',
      'on-failure must be ABORT or CONTINUE',
    ],
    [
      'an AWS_ exported variable',
      'version: 0.2\nenv:\n  exported-variables: [AWS_X]\nphases:\n  build:\n    commands: [true]\n',
      'start with AWS_ cannot be exported',
    ],
    [
      'a CODEBUILD_ variable',
      'version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: 1\nphases:\n  build:\n    commands: [true]\n',
      'CODEBUILD_ prefix is reserved',
    ],
    [
      'artifacts outside the source',
      'version: 0.2\nphases:\n  build:\n    commands: [true]\nartifacts:\n  files: [../x]\n',
      'must stay inside',
    ],
    [
      'a phase without commands',
      'version: 0.2\nphases:\n  build:\n    finally: [true]\n',
      'phases.build.commands is required',
    ],
    ['invalid YAML', 'version: 0.2\nphases: [\n', 'not valid YAML'],
    ['duplicate keys', 'version: 0.2\nversion: 0.2\nphases:\n  build:\n    commands: [true]\n', 'not valid YAML'],
  ])('fails on %s', (_what, text, message) => {
    expect(() => parseBuildspec(text)).toThrow(message);
  });
});
