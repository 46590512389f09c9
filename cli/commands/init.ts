import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parse as parseYaml } from 'yaml';
import { parseConfig, resolveRepository, type SourceConfig, type SourceType } from '../../shared/config';
import { CliError, usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import {
  APP_ENTRY,
  BUILDSPEC_FILES,
  CONFIG_FILE,
  carriesCredentials,
  checks,
  connectionFor,
  defaultBranches,
  defaultPath,
  GITIGNORE,
  gitignoreAddition,
  type InitEnvironment,
  type InitFile,
  initFiles,
  type InitPlan,
  type InitSource,
  pipelineNameFor,
  SELF_HOSTED_TYPES,
  typeTold,
} from '../init-plan';
import { println, type Io } from '../io';

/** The default buildspecs, relative to this module: the same in the source tree and in the built package. */
export const DEFAULT_BUILDSPECS_DIR = join(__dirname, '..', '..', 'buildspecs');

export interface InitOptions {
  /** `NAME=URL`, one per source. */
  readonly source: ReadonlyArray<string>;
  /** `NAME=ACCOUNT/REGION`, one per environment. */
  readonly env: ReadonlyArray<string>;
  /** `NAME=ARN`: the CodeConnections connection of a source (required for GitLab). */
  readonly connection?: ReadonlyArray<string>;
  /** `NAME=TYPE`: the provider of a source at a host of its own (GitHub Enterprise, self-managed GitLab). */
  readonly type?: ReadonlyArray<string>;
  readonly pipeline?: string;
  readonly toolingAccount?: string;
  readonly buildspecs?: boolean;
  readonly dir: string;
}

/** Where the questions are asked: a person at a terminal, or nobody. */
export interface Terminal {
  readonly input: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly output: NodeJS.WritableStream & { readonly isTTY?: boolean };
}

export const INIT_FLAGS_EXAMPLE =
  'stepdeploy init --source app=https://github.com/acme/app.git --source config=https://github.com/acme/config.git --env acceptance=111111111111/eu-west-1 --env production=222222222222/eu-west-1';

/**
 * `stepdeploy init`: the config, the CDK app that builds the pipeline from it (cdk.json and
 * bin/pipeline.cjs, through the package's DeploymentPipeline construct) and, if asked, the
 * default buildspecs. From flags it asks nothing; without them it asks at a terminal. It writes
 * every file or none: an existing file stops it before anything is written.
 */
export async function runInit(options: InitOptions, io: Io, terminal: Terminal): Promise<ExitCode> {
  const dir = resolve(options.dir);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw usageError(`--dir ${options.dir} is a file, not a folder; give the folder to write into`);
  }
  let plan: InitPlan;
  if (options.source.length > 0 || options.env.length > 0) {
    plan = await planFromFlags(options, dir);
  } else if (terminal.input.isTTY === true && terminal.output.isTTY === true) {
    // Before the questions, not after: refuse at once rather than after every answer is given.
    refuseExisting(dir, [CONFIG_FILE, 'cdk.json', APP_ENTRY]);
    plan = await askPlan(options, dir, terminal);
  } else {
    throw usageError(
      `init has no terminal to ask in and was given no answers as flags; give --source NAME=URL for each repository and --env NAME=ACCOUNT/REGION for each environment (and optionally --pipeline NAME, --tooling-account ACCOUNT, --buildspecs, --dir FOLDER), e.g. ${INIT_FLAGS_EXAMPLE}`,
    );
  }
  const files = initFiles(plan, (file) => readFileSync(join(DEFAULT_BUILDSPECS_DIR, file), 'utf8'));
  // The template is ours: a config it makes that does not load is a bug in init, found before writing.
  parseConfig(parseYaml(files[0]!.content), `the ${CONFIG_FILE} init made`);
  refuseExisting(
    dir,
    files.map((f) => f.path),
  );
  const gitignorePath = join(dir, GITIGNORE);
  const gitignore = readGitignore(gitignorePath);
  const ignoreLines = gitignoreAddition(gitignore);
  writeAll(
    dir,
    files,
    ignoreLines === '' ? undefined : { path: gitignorePath, addition: ignoreLines, existed: gitignore !== undefined },
  );

  const fromHere = relative(process.cwd(), dir);
  println(io, `Wrote into ${fromHere === '' ? '.' : fromHere.startsWith('..') ? dir : fromHere}:`);
  for (const file of files) println(io, `  ${file.path}`);
  if (ignoreLines !== '') {
    const added = ignoreLines.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    println(io, `  ${GITIGNORE} (${gitignore === undefined ? 'new' : 'added'}: ${added.join(' ')})`);
  }
  println(io);
  if (plan.buildspecs !== 'copy' && !existsSync(join(dir, plan.buildspecs.packageFolder, BUILDSPEC_FILES[0]))) {
    println(
      io,
      `The config names the package's buildspecs in ${plan.buildspecs.packageFolder}/: install stepdeploy in this folder (npm install --save-dev stepdeploy), or run init with --buildspecs to get copies to edit.`,
    );
  }
  println(io, 'Next:');
  println(io, '  npm install --save-dev aws-cdk aws-cdk-lib constructs   # unless your repository has them');
  println(io, `  npx cdk synth                                            # the pipeline's templates, offline`);
  println(io, '  then the stepdeploy README, "Deploy to AWS": bootstrap, source access, cdk deploy --all');
  return ExitCode.Ok;
}

async function planFromFlags(options: InitOptions, dir: string): Promise<InitPlan> {
  if (options.source.length === 0) {
    throw usageError(`init needs --source NAME=URL for each repository, got none; e.g. ${INIT_FLAGS_EXAMPLE}`);
  }
  if (options.env.length === 0) {
    throw usageError(
      `init needs --env NAME=ACCOUNT/REGION for each environment, got none; e.g. --env acceptance=111111111111/eu-west-1`,
    );
  }
  const pipeline = options.pipeline ?? pipelineNameFor(dir);
  const wrongPipeline = checks.pipeline(pipeline);
  if (wrongPipeline !== undefined) {
    throw usageError(
      `--pipeline ${JSON.stringify(pipeline)} is not a valid pipeline name: ${wrongPipeline}; e.g. --pipeline shop`,
    );
  }
  const connections = connectionsFromFlags(options.connection ?? [], options.source);
  const types = typesFromFlags(options.type ?? [], options.source);
  const sources: InitSource[] = [];
  for (const raw of options.source) sources.push(sourceFromFlag(raw, sources, connections, types));
  for (const [i, source] of sources.entries()) {
    const problem = await localSourceProblem(source.repository, dir);
    if (problem !== undefined) {
      throw usageError(`--source ${printable(options.source[i]!)}: ${problem}; ${localSourceFix(dir)}`);
    }
  }
  const environments: InitEnvironment[] = [];
  for (const raw of options.env) environments.push(environmentFromFlag(raw, environments, sources));
  return {
    pipeline,
    toolingAccount: toolingAccountFromFlag(options.toolingAccount),
    sources,
    environments,
    buildspecs: options.buildspecs === true ? 'copy' : { packageFolder: installedBuildspecsFolder(dir) },
  };
}

/** `--connection NAME=ARN` by source name, each checked; the sources themselves are checked after. */
function connectionsFromFlags(raws: ReadonlyArray<string>, sources: ReadonlyArray<string>): Map<string, string> {
  const connections = new Map<string, string>();
  const names = sources.map((raw) => raw.slice(0, Math.max(0, raw.indexOf('='))));
  for (const raw of raws) {
    const fail = (what: string) => usageError(`--connection ${printable(raw)}: ${what}`);
    const at = raw.indexOf('=');
    if (at <= 0) {
      throw fail(
        'expected NAME=ARN, e.g. --connection config=arn:aws:codeconnections:eu-west-1:123456789012:connection/<id>',
      );
    }
    const [name, arn] = [raw.slice(0, at), raw.slice(at + 1)];
    if (!names.includes(name)) throw fail(`no --source is named ${name}; sources: ${names.join(', ')}`);
    const wrong = checks.connectionArn(arn);
    if (wrong !== undefined) throw fail(`the connection ${wrong}`);
    connections.set(name, arn);
  }
  return connections;
}

/** `--type NAME=TYPE` by source name; each type is checked against its source's repository after. */
function typesFromFlags(raws: ReadonlyArray<string>, sources: ReadonlyArray<string>): Map<string, string> {
  const types = new Map<string, string>();
  const names = sources.map((raw) => raw.slice(0, Math.max(0, raw.indexOf('='))));
  for (const raw of raws) {
    const at = raw.indexOf('=');
    if (at <= 0) throw usageError(`--type ${printable(raw)}: expected NAME=TYPE, e.g. --type app=GITHUB_ENTERPRISE`);
    const name = raw.slice(0, at);
    if (!names.includes(name)) {
      throw usageError(
        `--type ${printable(raw)}: no --source is named ${printable(name)}; sources: ${names.join(', ')}`,
      );
    }
    types.set(name, raw.slice(at + 1));
  }
  return types;
}

/** A value as an error shows it: control characters escaped, so that it cannot drive the terminal. */
function printable(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function sourceFromFlag(
  raw: string,
  before: ReadonlyArray<InitSource>,
  connections: ReadonlyMap<string, string>,
  types: ReadonlyMap<string, string>,
): InitSource {
  const at = raw.indexOf('=');
  const name = at > 0 ? raw.slice(0, at) : '';
  const repository = at > 0 ? raw.slice(at + 1) : '';
  // A URL with a token in it is not repeated, not even in an error.
  const shown = carriesCredentials(repository) ? `${name}=<not shown: it carries credentials>` : printable(raw);
  const fail = (what: string) => usageError(`--source ${shown}: ${what}`);
  if (at <= 0 || repository === '') {
    throw fail('expected NAME=URL, e.g. --source app=https://github.com/acme/app.git');
  }
  const wrongName = checks.name(name);
  if (wrongName !== undefined) throw fail(`the name ${JSON.stringify(name)} is not valid: ${wrongName}`);
  if (before.some((s) => s.name === name)) throw fail(`source ${name} is given twice; give each source once`);
  const wrongRepository = checks.repository(repository);
  if (wrongRepository !== undefined) throw fail(`the repository ${wrongRepository}`);
  const givenType = types.get(name);
  const wrongType = checks.sourceType(repository, givenType);
  if (wrongType !== undefined) {
    throw givenType === undefined
      ? fail(`the repository ${wrongType}, e.g. --type ${name}=${SELF_HOSTED_TYPES[0]}`)
      : usageError(`--type ${printable(`${name}=${givenType}`)}: the repository of ${name} ${wrongType}`);
  }
  // Written into the config only where the repository does not tell it.
  const type = typeTold(repository) === undefined ? (givenType as SourceType) : undefined;
  const connectionArn = connections.get(name);
  const connection = connectionFor(repository, type);
  if (connection === 'required' && connectionArn === undefined) {
    throw fail(
      `CodeBuild reaches GitLab repositories only through a CodeConnections connection; create one (README "Deploy to AWS") and give --connection ${name}=<its ARN>`,
    );
  }
  if (connection === 'none' && connectionArn !== undefined) {
    throw usageError(
      `--connection ${name}=${connectionArn}: source ${name} is a CodeCommit repository or a local path, which CodeBuild reaches without a connection; leave it out`,
    );
  }
  return { name, repository, type, defaultBranch: 'main', path: defaultPath(name, before.length), connectionArn };
}

function environmentFromFlag(
  raw: string,
  before: ReadonlyArray<InitEnvironment>,
  sources: ReadonlyArray<InitSource>,
): InitEnvironment {
  const fail = (what: string) => usageError(`--env ${printable(raw)}: ${what}`);
  const match = /^([^=]*)=([^/]*)\/(.*)$/.exec(raw);
  if (!match) throw fail('expected NAME=ACCOUNT/REGION, e.g. --env acceptance=111111111111/eu-west-1');
  const [, name = '', account = '', region = ''] = match;
  const wrongName = checks.name(name);
  if (wrongName !== undefined) throw fail(`the name ${JSON.stringify(name)} is not valid: ${wrongName}`);
  if (before.some((e) => e.name === name)) throw fail(`environment ${name} is given twice; give each environment once`);
  const wrongAccount = checks.account(account);
  if (wrongAccount !== undefined) throw fail(`the account ${JSON.stringify(account)} ${wrongAccount}`);
  const wrongRegion = checks.region(region);
  if (wrongRegion !== undefined) throw fail(`the region ${JSON.stringify(region)} ${wrongRegion}`);
  return { name, account, region, branches: defaultBranches(before.length, sources) };
}

/**
 * A local path (or file:// URL) must be a git repository already: the local runtime's own check at
 * its start, asked at init so that a mistyped path is caught while the person is still here.
 */
function localSourceProblem(repository: string, dir: string): Promise<string | undefined> {
  const source = { repository } as SourceConfig;
  if (typeTold(repository) !== 'LOCAL_GIT') return Promise.resolve(undefined);
  // Required here, not imported: the CLI loads no module of local/ unless a command needs one (test/cli/lazy-local.test.ts).
  const { localRepositoryProblem } =
    require('../../local/local-repositories') as typeof import('../../local/local-repositories');
  return localRepositoryProblem(resolveRepository(source, join(dir, CONFIG_FILE)));
}

function localSourceFix(dir: string): string {
  return `give the path of a clone (\`git clone <url> <path>\`; a relative path is relative to ${dir}, where the config goes) or the repository's https:// URL`;
}

function toolingAccountFromFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const wrong = checks.account(value);
  if (wrong !== undefined) {
    throw usageError(`--tooling-account ${JSON.stringify(value)} ${wrong}; e.g. --tooling-account 999999999999`);
  }
  return value;
}

/**
 * Where the config finds the installed package's buildspecs: node_modules/stepdeploy in the folder
 * or one above it, as Node resolves `require('stepdeploy')` from the app. Not installed (npx from
 * its cache), the config names the place `npm install` will put them.
 */
function installedBuildspecsFolder(dir: string): string {
  for (let folder = dir; ; folder = dirname(folder)) {
    // At the package's root, or beside the built code (dist/ is laid out as the repository).
    for (const inPackage of ['buildspecs', 'dist/buildspecs']) {
      const candidate = join(folder, 'node_modules', 'stepdeploy', inPackage);
      if (existsSync(join(candidate, BUILDSPEC_FILES[0]))) return relative(dir, candidate).split(sep).join('/');
    }
    if (dirname(folder) === folder) return 'node_modules/stepdeploy/buildspecs';
  }
}

function readGitignore(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw usageError(
      `init writes nothing: it adds cdk.out/ and .stepdeploy/ to ${path}, which cannot be read (${(err as Error).message}); make it a readable file, or write into another folder with --dir`,
    );
  }
}

function refuseExisting(dir: string, paths: ReadonlyArray<string>): void {
  // lstat: a dangling symbolic link is in the way too.
  const existing = paths.filter((path) => lstatSync(join(dir, path), { throwIfNoEntry: false }) !== undefined);
  if (existing.length === 0) return;
  throw usageError(
    `init writes nothing: ${existing.join(', ')} already ${existing.length === 1 ? 'exists' : 'exist'} in ${dir}; move ${existing.length === 1 ? 'it' : 'them'} away, or write into another folder with --dir`,
  );
}

/**
 * All or nothing: exclusive creates, and what was written is removed again when one fails. The
 * .gitignore lines come last, appended to the user's file (or a new one), so nothing else can
 * fail after them.
 */
function writeAll(
  dir: string,
  files: ReadonlyArray<InitFile>,
  gitignore?: { readonly path: string; readonly addition: string; readonly existed: boolean },
): void {
  const created: string[] = [];
  try {
    for (const file of files) {
      const path = join(dir, file.path);
      const newFolder = mkdirSync(dirname(path), { recursive: true });
      if (newFolder !== undefined) created.push(newFolder);
      writeFileSync(path, file.content, { flag: 'wx' });
      created.push(path);
    }
    if (gitignore !== undefined) {
      writeFileSync(gitignore.path, gitignore.addition, { flag: gitignore.existed ? 'a' : 'wx' });
    }
  } catch (err) {
    for (const path of created.reverse()) rmSync(path, { recursive: true, force: true });
    throw new CliError(
      `init could not write into ${dir}: ${(err as Error).message}; nothing was written`,
      ExitCode.Usage,
      {
        cause: err,
      },
    );
  }
}

interface Question {
  readonly text: string;
  readonly defaultValue?: string;
  /** What is wrong with the answer (shown, then the question is asked again), or undefined. */
  readonly check: (answer: string) => string | undefined | Promise<string | undefined>;
}

/** The questions, one at a time; each answer is checked as it is given and asked again until it passes. */
async function askPlan(options: InitOptions, dir: string, terminal: Terminal): Promise<InitPlan> {
  const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: true });
  const ended = new AbortController();
  let interrupted = false;
  rl.on('SIGINT', () => {
    interrupted = true;
    rl.close();
  });
  rl.on('close', () => ended.abort());
  const say = (line = '') => terminal.output.write(`${line}\n`);
  const ask = async ({ text, defaultValue, check }: Question): Promise<string> => {
    for (;;) {
      let answer: string;
      try {
        answer = await rl.question(`${text}${defaultValue ? ` [${defaultValue}]` : ''}: `, { signal: ended.signal });
      } catch (err) {
        throw interrupted
          ? new CliError('init interrupted; nothing was written', ExitCode.Interrupted, { cause: err })
          : usageError('the input ended before every question was answered; nothing was written');
      }
      const value = answer.trim() || defaultValue || '';
      const wrong = await check(value);
      if (wrong === undefined) return value;
      say(`  ${wrong}`);
    }
  };
  const is = (what: string, check: (value: string) => string | undefined) => (value: string) => {
    const wrong = check(value);
    return wrong === undefined ? undefined : `${what} ${wrong}`;
  };

  try {
    say(`A deploy pipeline in ${dir}: Enter takes the [default]; nothing is written before the last answer.`);
    const pipeline = await ask({
      text: 'Pipeline name',
      defaultValue: options.pipeline ?? pipelineNameFor(dir),
      check: is('the pipeline name is not valid:', checks.pipeline),
    });

    say();
    say('Sources: the git repositories a deployment combines.');
    const sources: InitSource[] = [];
    for (;;) {
      const first = sources.length === 0;
      const name = await ask({
        text: first ? 'Source name' : 'Another source: its name, or Enter when done',
        defaultValue: first ? 'app' : undefined,
        check: (value) => {
          if (value === '') return undefined;
          if (sources.some((s) => s.name === value)) return `source ${value} is there already; give another name`;
          return is('the name is not valid:', checks.name)(value);
        },
      });
      if (name === '') break;
      const repository = await ask({
        text: `Repository of ${name} (https:// URL, or a local path relative to ${dir})`,
        check: async (value) => {
          const wrong = is('the repository', checks.repository)(value);
          if (wrong !== undefined) return wrong;
          const problem = await localSourceProblem(value, dir);
          return problem === undefined ? undefined : `${problem}; ${localSourceFix(dir)}`;
        },
      });
      const type =
        typeTold(repository) !== undefined
          ? undefined
          : ((
              await ask({
                text: `Provider of ${name}, at ${new URL(repository).host} (${SELF_HOSTED_TYPES.join(' or ')})`,
                check: (value) => is('the repository', (t) => checks.sourceType(repository, t))(value.toUpperCase()),
              })
            ).toUpperCase() as SourceType);
      const connection = connectionFor(repository, type);
      const connectionArn =
        connection === 'none'
          ? ''
          : await ask({
              text:
                connection === 'required'
                  ? `CodeConnections connection ARN of ${name} (CodeBuild reaches GitLab only through one)`
                  : `CodeConnections connection ARN of ${name}, or Enter for the account's source credential`,
              check: (value) =>
                value === '' && connection === 'optional'
                  ? undefined
                  : is('the connection', checks.connectionArn)(value),
            });
      const defaultBranch = await ask({
        text: `Default branch of ${name}`,
        defaultValue: 'main',
        check: is('the branch', checks.branch),
      });
      const path = await ask({
        text: `Where ${name} lands in the combined artifact ("." is its root)`,
        defaultValue: defaultPath(name, sources.length),
        check: (value) => {
          const other = sources.find((s) => s.path === value);
          if (other) return `${value} is where ${other.name} lands; give each source its own folder`;
          return is('the path', checks.path)(value);
        },
      });
      sources.push({ name, repository, type, defaultBranch, path, connectionArn: connectionArn || undefined });
    }

    say();
    say('Environments: where deployments go.');
    const environments: InitEnvironment[] = [];
    for (;;) {
      const first = environments.length === 0;
      const name = await ask({
        text: first ? 'Environment name' : 'Another environment: its name, or Enter when done',
        defaultValue: first ? 'acceptance' : undefined,
        check: (value) => {
          if (value === '') return undefined;
          if (environments.some((e) => e.name === value))
            return `environment ${value} is there already; give another name`;
          return is('the name is not valid:', checks.name)(value);
        },
      });
      if (name === '') break;
      const account = await ask({
        text: `AWS account of ${name} (12 digits)`,
        check: is('the account', checks.account),
      });
      const region = await ask({
        text: `Region of ${name}`,
        defaultValue: environments.at(-1)?.region,
        check: is('the region', checks.region),
      });
      const branches = await ask({
        text: `Branches ${name} may deploy (patterns, comma-separated; * is any)`,
        defaultValue: defaultBranches(environments.length, sources).join(', '),
        check: (value) => {
          const wrong = checks.branchPatterns(splitPatterns(value));
          return wrong === undefined ? undefined : `the branches ${wrong}`;
        },
      });
      environments.push({ name, account, region, branches: splitPatterns(branches) });
    }

    say();
    const toolingAccount = await ask({
      text: 'Tooling account: where the pipeline stack goes (12 digits, or Enter to set it later)',
      defaultValue: options.toolingAccount,
      check: (value) => (value === '' ? undefined : is('the account', checks.account)(value)),
    });
    const copy = await ask({
      text: 'Copy the default buildspecs into buildspecs/ to edit them? (y/n)',
      defaultValue: options.buildspecs === true ? 'y' : 'n',
      check: (value) => (/^(y|yes|n|no)$/i.test(value) ? undefined : 'answer y or n'),
    });
    return {
      pipeline,
      toolingAccount: toolingAccount === '' ? undefined : toolingAccount,
      sources,
      environments,
      buildspecs: /^y/i.test(copy) ? 'copy' : { packageFolder: installedBuildspecsFolder(dir) },
    };
  } finally {
    rl.close();
  }
}

function splitPatterns(value: string): string[] {
  return value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}
