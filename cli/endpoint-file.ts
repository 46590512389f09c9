import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Where a running `local serve` of one pipeline (or a CLI command running the runtime in its
 * process) says it listens, so `--local` commands with the same config find it. One file per
 * pipeline: configs kept side by side share `.stepdeploy/`.
 */

export interface EndpointFile {
  readonly endpoint: string;
  readonly pid: number;
  readonly stateMachineArn: string;
}

export function endpointFile(home: string, pipeline: string): string {
  return join(home, 'endpoints', `${pipeline}.json`);
}

export function writeEndpointFile(file: string, server: EndpointFile): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(server, null, 2)}\n`);
}

export function readEndpointFile(file: string): EndpointFile | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<EndpointFile>;
    if (
      typeof parsed.endpoint === 'string' &&
      typeof parsed.pid === 'number' &&
      typeof parsed.stateMachineArn === 'string'
    ) {
      return parsed as EndpointFile;
    }
  } catch {
    // missing or half-written: treated as no server
  }
  return undefined;
}
