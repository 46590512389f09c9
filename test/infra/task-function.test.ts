import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { bundleTask, TaskFunction, type TaskFunctionProps } from '../../infra/task-function';

/**
 * The installed package has no TypeScript sources and no esbuild: its functions deploy the handlers
 * `npm run build` bundled (bundleTask), the repository's bundle at synth. Both must be the same
 * function, and the prebundled asset's hash must follow its content only.
 */

const TASK = 'run-hook';
const PROPS: TaskFunctionProps = {
  task: TASK,
  timeout: Duration.seconds(30),
  description: 'stepdeploy RunHook',
  environment: { ARTIFACT_BUCKET: 'bucket' },
};

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-prebundled-'));
  // The same task bundled twice, in two folders at the same depth, as two builds of the package would.
  await Promise.all([bundleTask(TASK, join(dir, 'a', TASK)), bundleTask(TASK, join(dir, 'b', TASK))]);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Synthesized {
  readonly properties: Record<string, unknown>;
  /** The staged asset folder in the cloud assembly. */
  readonly asset: string;
}

function synth(props: Partial<TaskFunctionProps>): Synthesized {
  const app = new App();
  const stack = new Stack(app, 'Stack');
  new TaskFunction(stack, 'Task', { ...PROPS, ...props });
  const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
  const [resource] = Object.values(functions) as Array<{ Properties: Record<string, unknown> }>;
  const properties = resource!.Properties;
  const key = (properties.Code as { S3Key: string }).S3Key;
  return { properties, asset: join(app.synth().directory, `asset.${key.replace(/\.zip$/, '')}`) };
}

function withoutCode(properties: Record<string, unknown>): Record<string, unknown> {
  const { Code: _code, ...rest } = properties;
  return rest;
}

/** Writes a file into the bundle, as the pipeline stack adds the config to validate-input's. */
function addFile(content: string): TaskFunctionProps['afterBundling'] {
  return (outputDir) => [`printf '%s' '${content}' > '${join(outputDir, 'added.txt')}'`];
}

it('a prebundled handler makes the same function as bundling the source: handler, runtime, settings', () => {
  const fromSource = synth({});
  const prebundled = synth({ prebundledRoot: join(dir, 'a') });

  expect(prebundled.properties.Handler).toBe('index.handler');
  expect(withoutCode(prebundled.properties)).toEqual(withoutCode(fromSource.properties));
  expect(readdirSync(prebundled.asset).sort()).toEqual(['index.js']);
  expect(readdirSync(fromSource.asset).sort()).toEqual(['index.js']);
}, 60_000);

it('the prebundled asset is the bundle plus what afterBundling adds, its hash the same for the same content', () => {
  const first = synth({ prebundledRoot: join(dir, 'a'), afterBundling: addFile('one') });
  const rebuilt = synth({ prebundledRoot: join(dir, 'b'), afterBundling: addFile('one') });
  const changed = synth({ prebundledRoot: join(dir, 'a'), afterBundling: addFile('two') });

  expect(readFileSync(join(first.asset, 'added.txt'), 'utf8')).toBe('one');
  expect(readFileSync(join(first.asset, 'index.js'))).toEqual(readFileSync(join(dir, 'a', TASK, 'index.js')));
  expect(rebuilt.properties.Code).toEqual(first.properties.Code);
  expect(changed.properties.Code).not.toEqual(first.properties.Code);
}, 60_000);

it('fails naming the missing bundle when prebundledRoot does not hold the task', () => {
  expect(() => synth({ prebundledRoot: join(dir, 'missing') })).toThrow(
    `task "${TASK}" has no bundled handler: ${join(dir, 'missing', TASK, 'index.js')} does not exist; run \`npm run build\` or fix prebundledRoot`,
  );
});
