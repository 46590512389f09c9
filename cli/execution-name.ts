import { randomBytes } from 'node:crypto';

/**
 * Execution names cannot contain "/" and must be unique per state machine for 90 days:
 * `<environment>-<UTC yyyymmddThhmmss>-<6 random>` sorts by time and says what it deployed.
 */
export function executionName(environment: string, now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const random = [...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join('');
  return `${environment}-${stamp}-${random}`;
}
