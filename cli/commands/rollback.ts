import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { DeploymentRecord } from '../../shared/contracts';
import { usageError } from '../errors';
import { checkExecutionName } from '../execution-ref';
import type { ExitCode } from '../exit-codes';
import type { Io } from '../io';
import type { Target } from '../target';
import { plannedRedeployInput, runStart, type StartInput, type StartOptions } from './start';
import { historyKeys } from './status';

/**
 * `rollback --env E [--to EXECUTION]`: starts an execution that deploys again the build of an
 * earlier deployment of E — by default the one before what is deployed now — without fetching,
 * combining or building (input `{"environment": E, "redeploy": X}`, checked by ValidateInput).
 * Same lease, supersede rule, approval and hooks as any deployment: it is the newest request.
 */

export interface RollbackOptions extends Omit<StartOptions, 'env' | 'branch'> {
  readonly env: string;
  readonly to?: string;
}

/** The build a deployment record stands for: a rollback's record names the one it deployed again. */
function buildOf(record: DeploymentRecord): string {
  return record.redeployOf ?? record.execution;
}

async function readRecord(target: Target, bucket: string, key: string): Promise<DeploymentRecord> {
  const object = await target.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await object.Body!.transformToString()) as DeploymentRecord;
}

/** The newest deployment in the history whose build differs from what is deployed now. */
export async function previousDeployment(target: Target, environment: string): Promise<DeploymentRecord> {
  const bucket = target.bucket();
  const keys = await historyKeys(target, bucket, environment);
  let current: DeploymentRecord;
  try {
    current = await readRecord(target, bucket, `deployments/${environment}/current.json`);
  } catch {
    throw usageError(`nothing is deployed in ${environment} yet: there is nothing to roll back`);
  }
  for (const key of keys.reverse()) {
    const record = await readRecord(target, bucket, key);
    if (buildOf(record) !== buildOf(current) && Date.parse(record.startedAt) <= Date.parse(current.startedAt))
      return record;
  }
  throw usageError(
    `${environment} has no deployment before ${current.execution} with another build: name one with --to EXECUTION (stepdeploy executions --env ${environment})`,
  );
}

/** The input of a rollback (`--to`, or the deployment before the current one), checked as ValidateInput checks it. */
export async function rollbackInput(
  target: Target,
  options: { readonly env: string; readonly to?: string; readonly requestedBy?: string },
  configPath: string,
): Promise<StartInput> {
  const to =
    options.to !== undefined ? checkExecutionName(options.to) : buildOf(await previousDeployment(target, options.env));
  return plannedRedeployInput(options, to, configPath);
}

export async function runRollback(
  target: Target,
  options: RollbackOptions,
  configPath: string,
  io: Io,
  targetFlags: string,
): Promise<ExitCode> {
  const input = await rollbackInput(target, options, configPath);
  return runStart(target, input, { ...options, env: options.env }, io, targetFlags);
}
