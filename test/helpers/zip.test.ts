import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeZip, pythonZipTest, unzipTest } from './zip';

/** The zip checks other tests rely on: each must fail on a corrupt zip, or it proves nothing. */
describe('zip checks', () => {
  let dir: string;
  let good: string;
  let corrupt: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zip-checks-'));
    const content = 'replicas: 2\n'.repeat(50);
    // Stored, so the content's bytes are in the file as they are; a folder and a second entry around it.
    const zip = await makeZip([
      { name: 'config/' },
      { name: 'config/settings.yml', content, compress: false },
      { name: 'README.md', content: '# app\n' },
    ]);
    good = join(dir, 'good.zip');
    writeFileSync(good, zip);
    const bad = Buffer.from(zip);
    const at = bad.indexOf(content.slice(0, 40));
    expect(at).toBeGreaterThan(0);
    bad[at + 100]! ^= 0x01;
    corrupt = join(dir, 'corrupt.zip');
    writeFileSync(corrupt, bad);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('unzipTest passes a good zip and fails one with one byte of data flipped, naming the entry', () => {
    expect(unzipTest(good)).toContain('No errors detected');
    expect(() => unzipTest(corrupt)).toThrow(/config\/settings\.yml\s+bad CRC/);
  });

  it('pythonZipTest passes a good zip and fails one with one byte of data flipped, naming the entry', () => {
    expect(() => pythonZipTest(good)).not.toThrow();
    expect(() => pythonZipTest(corrupt)).toThrow('bad CRC-32 or header: config/settings.yml');
  });

  it('fails, naming the install command, when unzip is not installed', () => {
    const empty = mkdtempSync(join(dir, 'path-'));

    expect(() => unzipTest(good, { PATH: empty })).toThrow(
      'unzip is not installed and the zip tests need it: install it (apt-get install -y unzip)',
    );
  });
});
