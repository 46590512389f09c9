import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A secret of the local runtime, where AWS keeps one in Secrets Manager: read from `file`, or made
 * once (24 random bytes, hex), readable by this user only. It lives under `.stepdeploy/`, never in
 * the repository.
 */
export function readOrMakeSecret(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Made by another process at the same moment: read that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return readFileSync(file, 'utf8').trim();
}
