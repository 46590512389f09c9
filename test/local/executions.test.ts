import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptLegacyExecutions, ExecutionStore, type ExecutionRecord } from '../../local/executions';

const SHOP = 'arn:aws:states:us-east-1:000000000000:stateMachine:shop';
const BILLING = 'arn:aws:states:us-east-1:000000000000:stateMachine:billing';

function record(stateMachineArn: string, name: string): ExecutionRecord {
  return {
    executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`,
    stateMachineArn,
    name,
    status: 'SUCCEEDED',
    startDate: 1,
    input: '{}',
    redriveCount: 0,
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-executions-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ExecutionStore.records', () => {
  it('skips, with one warning each, a record that cannot be read and one of another state machine; lists the rest', () => {
    const store = new ExecutionStore(dir);
    store.saveRecord(record(SHOP, 'good'));
    store.saveRecord(record(BILLING, 'foreign'));
    mkdirSync(join(dir, 'torn'));
    writeFileSync(join(dir, 'torn', 'execution.json'), '{"executionArn": "arn:aws:st');
    const warnings: string[] = [];

    const records = store.records(SHOP, (message) => warnings.push(message));

    expect(records.map((r) => r.name)).toEqual(['good']);
    expect(warnings.sort()).toEqual([
      expect.stringMatching(
        /^skipping execution foreign: .*foreign\/execution\.json belongs to arn:aws:states:us-east-1:000000000000:stateMachine:billing, not .*:stateMachine:shop$/,
      ),
      expect.stringMatching(/^skipping execution torn: .*torn\/execution\.json cannot be read \(.*JSON.*\)$/),
    ]);
  });
  it('reads again only the records whose file changed, whoever wrote it, and hands out copies', () => {
    const store = new ExecutionStore(dir);
    for (const name of ['a', 'b', 'c']) store.saveRecord(record(SHOP, name));
    // Another process (a `local serve` beside an in-process runtime) writing the same folder.
    const other = new ExecutionStore(dir);
    // The module object the store calls through (an `import * as` would be a copy of it).
    const reads = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readFileSync');
    const recordReads = (): number =>
      reads.mock.calls.filter(([path]) => String(path).endsWith('execution.json')).length;
    try {
      expect(store.records(SHOP, () => undefined)).toHaveLength(3);
      const first = recordReads();
      expect(first).toBe(3);
      store.records(SHOP, () => undefined);
      expect(recordReads() - first).toBe(0);

      other.saveRecord({ ...record(SHOP, 'b'), status: 'FAILED' });
      const listed = store.records(SHOP, () => undefined);

      expect(recordReads() - first).toBe(1);
      expect(Object.fromEntries(listed.map((r) => [r.name, r.status]))).toEqual({
        a: 'SUCCEEDED',
        b: 'FAILED',
        c: 'SUCCEEDED',
      });
      listed.find((r) => r.name === 'a')!.status = 'ABORTED';
      expect(store.records(SHOP, () => undefined).find((r) => r.name === 'a')!.status).toBe('SUCCEEDED');
    } finally {
      reads.mockRestore();
    }
  });
});

describe('adoptLegacyExecutions', () => {
  it('moves the executions of its state machine from the shared folder into its own, and leaves the others', () => {
    const legacy = new ExecutionStore(dir);
    legacy.saveRecord(record(SHOP, 'old-shop'));
    legacy.saveHistory('old-shop', []);
    legacy.saveRecord(record(BILLING, 'old-billing'));
    const shopDir = join(dir, 'shop');

    const adopted = adoptLegacyExecutions(dir, shopDir, SHOP);

    expect(adopted).toEqual(['old-shop']);
    expect(new ExecutionStore(shopDir).records(SHOP, () => undefined).map((r) => r.name)).toEqual(['old-shop']);
    expect(existsSync(join(shopDir, 'old-shop', 'history.json'))).toBe(true);
    expect(existsSync(join(dir, 'old-billing', 'execution.json'))).toBe(true);
    expect(adoptLegacyExecutions(dir, join(dir, 'billing'), BILLING)).toEqual(['old-billing']);
  });

  it('never overwrites an execution of the same name already in the pipeline folder', () => {
    const legacy = new ExecutionStore(dir);
    legacy.saveRecord(record(SHOP, 'same'));
    const own = new ExecutionStore(join(dir, 'shop'));
    own.saveRecord({ ...record(SHOP, 'same'), startDate: 2 });

    expect(adoptLegacyExecutions(dir, join(dir, 'shop'), SHOP)).toEqual([]);
    expect(own.loadRecord('same')?.startDate).toBe(2);
    expect(existsSync(join(dir, 'same', 'execution.json'))).toBe(true);
  });
});
