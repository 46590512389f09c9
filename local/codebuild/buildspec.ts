import { parseDocument } from 'yaml';
import { BuildspecError } from './errors';

/**
 * Buildspec v0.2, the subset the local runner runs exactly as CodeBuild documents it. Anything
 * else is an error naming the key: a key silently skipped here would make a local run pass
 * where the real build behaves differently.
 */

export const PHASE_NAMES = ['install', 'pre_build', 'build', 'post_build'] as const;
export type PhaseName = (typeof PHASE_NAMES)[number];

export type OnFailure = 'ABORT' | 'CONTINUE';

export interface PhaseSpec {
  readonly commands: ReadonlyArray<string>;
  readonly finally: ReadonlyArray<string>;
  readonly onFailure?: OnFailure;
}

export interface ArtifactsSpec {
  readonly files: ReadonlyArray<string>;
  readonly name?: string;
  readonly baseDirectory?: string;
  readonly discardPaths: boolean;
  readonly excludePaths: ReadonlyArray<string>;
}

export interface Buildspec {
  readonly shell: 'bash' | '/bin/sh';
  readonly variables: Readonly<Record<string, string>>;
  readonly exportedVariables: ReadonlyArray<string>;
  readonly phases: Readonly<Partial<Record<PhaseName, PhaseSpec>>>;
  readonly artifacts?: ArtifactsSpec;
}

export const SUPPORTED_KEYS: ReadonlyArray<string> = [
  'version (0.2)',
  'env.shell (bash | /bin/sh)',
  'env.variables',
  'env.exported-variables',
  ...PHASE_NAMES.map((p) => `phases.${p}.{commands,finally,on-failure (ABORT | CONTINUE)}`),
  'artifacts.{files,name,base-directory,discard-paths,exclude-paths}',
];

/** Why a documented key does not run locally, and what to do instead. */
const UNSUPPORTED_REASONS: Readonly<Record<string, string>> = {
  'run-as': 'local builds run as your own user; drop run-as',
  'env.parameter-store':
    'the local runner reads no SSM parameters; pass a project or override environment variable instead',
  'env.secrets-manager': 'the local runner reads no secrets; pass a project or override environment variable instead',
  'env.git-credential-helper': 'local sources are cloned from local paths without credentials',
  proxy: 'local builds use no proxy settings',
  batch: 'batch builds do not run locally',
  reports: 'test reports are not collected locally; write them as artifacts instead',
  cache: 'the local runner keeps no build cache',
  'phases.*.run-as': 'local builds run as your own user; drop run-as',
  'phases.install.runtime-versions':
    'the local runner uses the tools on your PATH; install the runtime yourself or in install commands',
  'artifacts.secondary-artifacts': 'only the primary artifact is uploaded locally',
  'artifacts.s3-prefix': 'set the project artifacts Path instead',
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseBuildspec(text: string): Buildspec {
  // YAML 1.1, as CodeBuild reads buildspecs: `discard-paths: yes` is a boolean there.
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new BuildspecError(`buildspec is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const root: unknown = doc.toJS();
  const problems: string[] = [];
  const result = readRoot(root, problems);
  if (problems.length > 0 || result === undefined) {
    throw new BuildspecError(
      `buildspec cannot run locally:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        `Supported subset: ${SUPPORTED_KEYS.join(', ')}.`,
    );
  }
  return result;
}

function readRoot(root: unknown, problems: string[]): Buildspec | undefined {
  if (!isMap(root)) {
    problems.push('the buildspec must be a YAML mapping with version and phases');
    return undefined;
  }
  checkKeys(root, '', ['version', 'env', 'phases', 'artifacts'], problems);
  if (root.version === undefined) problems.push('version is required (0.2)');
  else if (String(root.version) !== '0.2') {
    problems.push(`version must be 0.2, got ${JSON.stringify(root.version)}: only v0.2 semantics run locally`);
  }

  let shell: Buildspec['shell'] = '/bin/sh';
  let variables: Record<string, string> = {};
  let exportedVariables: string[] = [];
  if (root.env !== undefined && root.env !== null) {
    if (!isMap(root.env)) problems.push('env must be a mapping');
    else {
      checkKeys(root.env, 'env', ['shell', 'variables', 'exported-variables'], problems);
      if (root.env.shell !== undefined) {
        if (root.env.shell === 'bash' || root.env.shell === '/bin/sh') shell = root.env.shell;
        else problems.push(`env.shell must be bash or /bin/sh, got ${JSON.stringify(root.env.shell)}`);
      }
      variables = readVariables(root.env.variables, problems);
      exportedVariables = readExported(root.env['exported-variables'], problems);
    }
  }

  const phases: Partial<Record<PhaseName, PhaseSpec>> = {};
  if (root.phases === undefined || root.phases === null) problems.push('phases is required');
  else if (!isMap(root.phases)) problems.push('phases must be a mapping');
  else {
    for (const key of Object.keys(root.phases)) {
      if (!(PHASE_NAMES as ReadonlyArray<string>).includes(key)) {
        problems.push(`phases.${key} is not a build phase (phases are ${PHASE_NAMES.join(', ')})`);
      }
    }
    for (const name of PHASE_NAMES) {
      const spec = readPhase(root.phases[name], name, problems);
      if (spec) phases[name] = spec;
    }
  }

  const artifacts = readArtifacts(root.artifacts, problems);
  return { shell, variables, exportedVariables, phases, ...(artifacts ? { artifacts } : {}) };
}

function readVariables(value: unknown, problems: string[]): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isMap(value)) {
    problems.push('env.variables must be a mapping of NAME: value');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) problems.push(`env.variables.${name} is not a valid environment variable name`);
    else if (name.startsWith('CODEBUILD_')) problems.push(`env.variables.${name}: the CODEBUILD_ prefix is reserved`);
    else if (v === null || typeof v === 'object') problems.push(`env.variables.${name} must be a scalar`);
    else out[name] = String(v);
  }
  return out;
}

function readExported(value: unknown, problems: string[]): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push('env.exported-variables must be a list of variable names');
    return [];
  }
  const out: string[] = [];
  value.forEach((name, i) => {
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      problems.push(`env.exported-variables[${i}] is not a variable name: ${JSON.stringify(name)}`);
    } else if (name.startsWith('AWS_')) {
      problems.push(`env.exported-variables[${i}]: variables that start with AWS_ cannot be exported (${name})`);
    } else out.push(name);
  });
  return out;
}

function readPhase(value: unknown, name: PhaseName, problems: string[]): PhaseSpec | undefined {
  if (value === undefined || value === null) return undefined;
  const path = `phases.${name}`;
  if (!isMap(value)) {
    problems.push(`${path} must be a mapping with commands`);
    return undefined;
  }
  checkKeys(value, path, ['commands', 'finally', 'on-failure'], problems);
  if (value.commands === undefined) problems.push(`${path}.commands is required when ${path} is given`);
  const commands = readCommands(value.commands, `${path}.commands`, problems);
  const fin = readCommands(value.finally, `${path}.finally`, problems);
  const onFailure = value['on-failure'];
  if (onFailure !== undefined && onFailure !== 'ABORT' && onFailure !== 'CONTINUE') {
    problems.push(`${path}.on-failure must be ABORT or CONTINUE, got ${JSON.stringify(onFailure)}`);
  }
  return {
    commands,
    finally: fin,
    ...(onFailure === 'ABORT' || onFailure === 'CONTINUE' ? { onFailure } : {}),
  };
}

function readCommands(value: unknown, path: string, problems: string[]): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${path} must be a list of commands`);
    return [];
  }
  const out: string[] = [];
  value.forEach((c, i) => {
    if (c === null || typeof c === 'object') problems.push(`${path}[${i}] must be a command string`);
    else out.push(String(c));
  });
  return out;
}

function readArtifacts(value: unknown, problems: string[]): ArtifactsSpec | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isMap(value)) {
    problems.push('artifacts must be a mapping with files');
    return undefined;
  }
  checkKeys(
    value,
    'artifacts',
    ['files', 'name', 'base-directory', 'discard-paths', 'exclude-paths', 'enable-symlinks'],
    problems,
  );
  // Local zips always keep symlinks as links: what `yes` asks for. CodeBuild's `no` (zip what
  // each link points to) is not modelled, and is refused rather than run differently.
  const links = value['enable-symlinks'];
  if (links !== undefined && links !== true && links !== 'yes') {
    problems.push(
      `artifacts.enable-symlinks ${JSON.stringify(links)} is not supported locally: local zips keep symlinks as links (enable-symlinks: yes)`,
    );
  }
  const files = readPatterns(value.files, 'artifacts.files', problems);
  if (files.length === 0) problems.push('artifacts.files is required and must list at least one path or glob');
  const excludePaths = readPatterns(value['exclude-paths'], 'artifacts.exclude-paths', problems);
  const discard = value['discard-paths'];
  let discardPaths = false;
  if (discard === true || discard === 'yes') discardPaths = true;
  else if (discard !== undefined && discard !== false && discard !== 'no') {
    problems.push(`artifacts.discard-paths must be yes or no, got ${JSON.stringify(discard)}`);
  }
  const name = value.name;
  if (name !== undefined && (name === null || typeof name === 'object'))
    problems.push('artifacts.name must be a string');
  const base = value['base-directory'];
  if (base !== undefined && typeof base !== 'string') problems.push('artifacts.base-directory must be a path');
  return {
    files,
    excludePaths,
    discardPaths,
    ...(name !== undefined && name !== null && typeof name !== 'object' ? { name: String(name) } : {}),
    ...(typeof base === 'string' ? { baseDirectory: base } : {}),
  };
}

function readPatterns(value: unknown, path: string, problems: string[]): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) {
    problems.push(`${path} must be a list of paths or globs`);
    return [];
  }
  const out: string[] = [];
  list.forEach((p, i) => {
    if (typeof p !== 'string' || p === '') problems.push(`${path}[${i}] must be a non-empty path or glob`);
    else if (p.startsWith('/') || p.split('/').includes('..')) {
      problems.push(`${path}[${i}] must stay inside the source directory, got ${JSON.stringify(p)}`);
    } else out.push(p.replace(/^(\.\/)+/, ''));
  });
  return out;
}

function checkKeys(
  map: Record<string, unknown>,
  path: string,
  allowed: ReadonlyArray<string>,
  problems: string[],
): void {
  for (const key of Object.keys(map)) {
    if (allowed.includes(key)) continue;
    const full = path === '' ? key : `${path}.${key}`;
    const reason = UNSUPPORTED_REASONS[full] ?? UNSUPPORTED_REASONS[full.replace(/^phases\.[^.]+\./, 'phases.*.')];
    problems.push(
      reason
        ? `${full} is not supported locally: ${reason}`
        : `${full} is not a supported buildspec key (here: ${allowed.join(', ')})`,
    );
  }
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
