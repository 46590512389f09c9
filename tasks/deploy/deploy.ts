import { BatchGetBuildsCommand, StartBuildCommand, StopBuildCommand, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CodeBuildEnvironmentVariable, DeploymentRecord } from '../shared/contracts';
import { supersedes, type Ordered } from '../shared/deployment-order';
import { readJsonObject } from '../shared/s3';
import { DeployLeaseBusyError, DeploySupersededError } from './errors';
import { currentKey, readLease, releaseLease, writeLease, type DeployLease } from './lease';

/**
 * Deploy (`lambda:invoke.waitForTaskToken`): the guard is part of the step it protects. Every
 * start of Deploy — a redrive included — takes the environment's lease before it starts the deploy
 * build, so at most one deploy per environment runs, and an older execution never deploys over a
 * newer one (mode "superseded"). The state completes when deploy-complete hands the build's end
 * back to Step Functions with the task token kept in the lease.
 */

export interface DeployEvent extends Ordered {
  readonly taskToken: string;
  readonly environment: string;
  /** `<bucket>/<key>` of build.zip. */
  readonly source: string;
  readonly environmentVariables: ReadonlyArray<CodeBuildEnvironmentVariable>;
}

export interface DeployDependencies {
  readonly s3: S3Client;
  readonly codebuild: CodeBuildClient;
  readonly bucket: string;
  readonly projectName: string;
  /** How long a lease lasts if its holder never gives it back: the deploy build's timeout and a margin. */
  readonly leaseSeconds: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export interface DeployStarted {
  readonly buildId: string;
}

/** A lease taken but with no build after this long belongs to a holder that crashed in between. */
const START_GRACE_MS = 5 * 60 * 1000;
const ATTEMPTS = 5;

function describe(o: Ordered): string {
  return `${o.execution} (started ${o.startedAt})`;
}

export async function deploy(event: DeployEvent, deps: DeployDependencies): Promise<DeployStarted> {
  const now = deps.now ?? (() => new Date());
  for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
    await refuseIfSuperseded(event, deps);
    const held = await readLease(deps.s3, deps.bucket, event.environment);
    const holder = held?.value;
    // Every lease write is by an execution at least as new as the one before, so the holder —
    // released or not — is the newest execution that reached Deploy. Released is not enough to
    // let an older one in: the newer one may have deployed and not yet recorded current.json.
    if (holder && supersedes(holder, event)) {
      throw new DeploySupersededError(
        `${event.environment}: the newer execution ${describe(holder)} ${holder.released ? `reached Deploy first (its deploy ended: ${holder.outcome ?? 'released'})` : 'is deploying'}; this older execution ${describe(event)} must not deploy over it. Start a new execution to deploy these branches again.`,
      );
    }
    if (holder && holder.execution !== event.execution && (await isActive(holder, deps, now()))) {
      throw new DeployLeaseBusyError(
        `${event.environment}: execution ${describe(holder)} is deploying (build ${holder.buildId ?? 'starting'}); ${event.execution} waits for it`,
      );
    }
    const at = now();
    const lease: DeployLease = {
      environment: event.environment,
      execution: event.execution,
      startedAt: event.startedAt,
      taskToken: event.taskToken,
      acquiredAt: at.toISOString(),
      expiresAt: new Date(at.getTime() + deps.leaseSeconds * 1000).toISOString(),
    };
    const written = await writeLease(deps.s3, deps.bucket, lease, held);
    if (written === undefined) continue; // another execution wrote the lease first: look again
    // A redrive of this very execution takes its own lease back; its earlier build must not run on.
    if (holder?.execution === event.execution && holder.buildId && !holder.released) await stopQuietly(deps.codebuild, holder.buildId);
    return startDeployBuild(event, deps, { value: lease, etag: written.etag }, now);
  }
  throw new DeployLeaseBusyError(`${event.environment}: the deploy lease changed ${ATTEMPTS} times while ${event.execution} tried to take it`);
}

/** current.json names the newest deployment: an older execution stops here. */
async function refuseIfSuperseded(event: DeployEvent, deps: DeployDependencies): Promise<void> {
  const current = await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, currentKey(event.environment));
  const deployed = current?.value;
  if (deployed && supersedes(deployed, event)) {
    throw new DeploySupersededError(
      `${event.environment}: the newer execution ${describe(deployed)} is already deployed there (at ${deployed.deployedAt}); this older execution ${describe(event)} must not deploy over it. Start a new execution to deploy these branches again.`,
    );
  }
}

/** Whether a lease still protects a deploy: not given back, not expired, and its build (if any) still running. */
async function isActive(lease: DeployLease, deps: DeployDependencies, now: Date): Promise<boolean> {
  if (lease.released || Date.parse(lease.expiresAt) <= now.getTime()) return false;
  if (!lease.buildId) return now.getTime() - Date.parse(lease.acquiredAt) < START_GRACE_MS;
  const { builds } = await deps.codebuild.send(new BatchGetBuildsCommand({ ids: [lease.buildId] }));
  const build = builds?.[0];
  // A build that ended without giving the lease back (its completion event was lost) holds nothing.
  return build !== undefined && build.buildComplete !== true;
}

async function startDeployBuild(
  event: DeployEvent,
  deps: DeployDependencies,
  held: { value: DeployLease; etag: string },
  now: () => Date,
): Promise<DeployStarted> {
  let buildId: string;
  try {
    const { build } = await deps.codebuild.send(
      new StartBuildCommand({
        projectName: deps.projectName,
        sourceTypeOverride: 'S3',
        sourceLocationOverride: event.source,
        environmentVariablesOverride: event.environmentVariables.map((v) => ({ name: v.Name, value: v.Value, type: v.Type })),
      }),
    );
    buildId = build!.id!;
  } catch (err) {
    await releaseLease(deps.s3, deps.bucket, held, `StartBuild failed: ${(err as Error).name}`, now());
    throw err;
  }
  const recorded = await writeLease(deps.s3, deps.bucket, { ...held.value, buildId }, held);
  if (recorded === undefined) {
    // Only an expired or stale lease can be taken from us: the build must not go on unguarded.
    await stopQuietly(deps.codebuild, buildId);
    throw new DeployLeaseBusyError(`${event.environment}: the deploy lease of ${event.execution} was taken over before its build ${buildId} was recorded; the build was stopped`);
  }
  return { buildId };
}

async function stopQuietly(codebuild: CodeBuildClient, id: string): Promise<void> {
  try {
    await codebuild.send(new StopBuildCommand({ id }));
  } catch (err) {
    console.error(`could not stop build ${id}: ${(err as Error).name}: ${(err as Error).message}`);
  }
}
