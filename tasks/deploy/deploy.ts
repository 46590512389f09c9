import { randomUUID } from 'node:crypto';
import { StartBuildCommand, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CodeBuildEnvironmentVariable, DeploymentRecord } from '../../shared/contracts';
import { isNewer, supersedes, type Ordered } from '../shared/deployment-order';
import { readJsonObject, type JsonObject } from '../shared/s3';
import { DeployLeaseBusyError, DeploySupersededError } from './errors';
import {
  currentKey,
  LEASE_ATTEMPTS,
  leaseKey,
  readLease,
  releaseLease,
  sameTake,
  writeLease,
  type DeployLease,
} from './lease';
import { findLeaseBuild, LEASE_ID_VARIABLE, stopQuietly, type LeaseBuild } from './lease-builds';

/**
 * Deploy (`lambda:invoke.waitForTaskToken`): the guard is part of the step it protects. Every
 * start of Deploy — a retry or a redrive included — takes the environment's lease before it
 * starts the deploy build, so at most one deploy per environment runs, and an older execution
 * never deploys over a newer one (mode "superseded"). The state completes when deploy-complete
 * hands the build's end back to Step Functions with the task token kept in the lease.
 *
 * Nothing here relies on this function running to its end (RELIABILITY.md section 2): the lease
 * is written before StartBuild, the build carries the lease id and checks it before it deploys,
 * and a build whose id never reached the lease is found by that id.
 */

export interface DeployEvent extends Ordered {
  readonly taskToken: string;
  readonly environment: string;
  /** `$$.Execution.RedriveCount`: which run of the execution this is. */
  readonly redriveCount: number;
  /** `<bucket>/<key>` of build.zip. */
  readonly source: string;
  readonly environmentVariables: ReadonlyArray<CodeBuildEnvironmentVariable>;
}

export interface DeployDependencies {
  readonly s3: S3Client;
  readonly codebuild: CodeBuildClient;
  readonly bucket: string;
  /** The bucket's region, where the deploy build's fence reads the lease. */
  readonly region: string;
  readonly projectName: string;
  /** The deploy build's queue + build timeout and a margin: written into the lease for people reading it. */
  readonly leaseSeconds: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export interface DeployStarted {
  readonly buildId: string;
}

/**
 * A lease with no build found may still get one for this long after it was taken: its holder's
 * invocation can be between the lease write and StartBuild until the Deploy function's timeout
 * (60 s, infra/deploy-function.ts), plus a margin. After it, a build can only come from a request
 * delayed past that, and such a build finds the lease taken over and exits at its fence.
 */
export const START_WINDOW_MS = 3 * 60 * 1000;

/** How long the end of another execution's build may take to reach its task before the lease is taken anyway. */
export const HANDOVER_MS = 5 * 60 * 1000;

/** Outcomes of a lease given back because its build ended: nothing is left to stop. */
const BUILD_END_OUTCOMES = new Set(['SUCCEEDED', 'FAILED', 'FAULT', 'STOPPED', 'TIMED_OUT']);

function describe(o: Ordered): string {
  return `${o.execution} (started ${o.startedAt})`;
}

function ordered(o: Ordered): Ordered {
  return { execution: o.execution, startedAt: o.startedAt };
}

export async function deploy(event: DeployEvent, deps: DeployDependencies): Promise<DeployStarted> {
  const now = deps.now ?? (() => new Date());
  for (let attempt = 0; attempt < LEASE_ATTEMPTS; attempt += 1) {
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
    if (holder?.waiting && supersedes(holder.waiting, event)) {
      throw new DeploySupersededError(
        `${event.environment}: the newer execution ${describe(holder.waiting)} waits to deploy there; this older execution ${describe(event)} must not deploy over it. Start a new execution to deploy these branches again.`,
      );
    }
    if (holder && holder.execution === event.execution && (holder.redriveCount ?? 0) > event.redriveCount) {
      // An invocation left over from an earlier run (stopped or failed, then redriven): the lease is
      // the redriven run's, whose build must not be stopped or replaced by it.
      throw new DeploySupersededError(
        `${event.environment}: run ${holder.redriveCount} of ${event.execution} (a redrive) holds the lease; this invocation of run ${event.redriveCount} belongs to a run that has ended and does nothing`,
      );
    }
    let keepLeaseId: string | undefined;
    if (held && holder) {
      const sameRun = holder.execution === event.execution && (holder.redriveCount ?? 0) === event.redriveCount;
      const build = await findLeaseBuild(deps.codebuild, deps.projectName, holder);
      if (sameRun && !holder.released && build && !build.complete) {
        // A retry of this very Deploy after an attempt that started the build and then failed
        // (timeout, crash before its id was recorded): the build is this run's, adopt it.
        const adopted = await writeLease(
          deps.s3,
          deps.bucket,
          { ...holder, taskToken: event.taskToken, buildId: build.id },
          held,
        );
        if (adopted === undefined) continue;
        return { buildId: build.id };
      }
      if (sameRun && !holder.released && !build) {
        // The earlier attempt may still be about to start its build: the same lease id is the
        // same idempotency token, so CodeBuild answers that build instead of starting a second.
        keepLeaseId = holder.leaseId;
      } else if (isRunning(holder, build, now()) || awaitsHandover(holder, build, event, now())) {
        if (holder.execution === event.execution) {
          // This execution's earlier run (a redrive): its build must not run on beside a new one.
          if (build) await stopQuietly(deps.codebuild, build.id);
        } else {
          await registerWaiting(event, held, deps);
        }
        throw new DeployLeaseBusyError(
          `${event.environment}: execution ${describe(holder)}${holder.execution === event.execution ? ` (run ${holder.redriveCount ?? 0}, being stopped)` : ''} ${build?.complete ? `has just deployed (build ${build.id}); its end is being handed to it` : `is deploying (build ${build?.id ?? 'starting'})`}; ${event.execution} waits for it`,
        );
      }
    }
    const at = now();
    const lease: DeployLease = {
      environment: event.environment,
      execution: event.execution,
      startedAt: event.startedAt,
      redriveCount: event.redriveCount,
      taskToken: event.taskToken,
      leaseId: keepLeaseId ?? randomUUID(),
      acquiredAt: keepLeaseId && holder ? holder.acquiredAt : at.toISOString(),
      expiresAt: new Date(at.getTime() + deps.leaseSeconds * 1000).toISOString(),
    };
    const written = await writeLease(deps.s3, deps.bucket, lease, held);
    if (written === undefined) continue; // another writer came first: look again
    return startDeployBuild(event, deps, { value: lease, etag: written.etag }, now);
  }
  throw new DeployLeaseBusyError(
    `${event.environment}: the deploy lease changed ${LEASE_ATTEMPTS} times while ${event.execution} tried to take it`,
  );
}

/**
 * Whether the lease still protects a deploy: its build runs — released or expired, a lease whose
 * build runs still holds (the build was stopped and has not ended yet, or its end event is on its
 * way). A lease with no build at all holds while its holder may still start one.
 */
function isRunning(lease: DeployLease, build: LeaseBuild | undefined, now: Date): boolean {
  if (build) return !build.complete;
  // Released: a build of it that starts now exits at its fence.
  if (lease.released) return false;
  return now.getTime() - Date.parse(lease.acquiredAt) < START_WINDOW_MS;
}

/**
 * A build of another execution that ended moments ago while its lease is not given back yet: its
 * end is on its way to that execution's Deploy task (deploy-complete reads the task token from the
 * lease). Taking the lease now would leave that task waiting until its timeout, its deploy done.
 * After HANDOVER_MS the event counts as lost, and the lease is taken.
 */
function awaitsHandover(lease: DeployLease, build: LeaseBuild | undefined, event: DeployEvent, now: Date): boolean {
  if (!build?.complete || lease.released || lease.execution === event.execution || build.endedAt === undefined)
    return false;
  return now.getTime() - build.endedAt < HANDOVER_MS;
}

/** Records the newest waiter in the lease, so that older executions arriving later give way at once. */
async function registerWaiting(
  event: DeployEvent,
  held: JsonObject<DeployLease>,
  deps: DeployDependencies,
): Promise<void> {
  const waiting = held.value.waiting;
  if (waiting && !isNewer(event, waiting)) return;
  // Best effort: losing this write (412/409) only means someone else wrote the lease; the next attempt sees it.
  await writeLease(deps.s3, deps.bucket, { ...held.value, waiting: ordered(event) }, held);
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

async function startDeployBuild(
  event: DeployEvent,
  deps: DeployDependencies,
  held: JsonObject<DeployLease>,
  now: () => Date,
): Promise<DeployStarted> {
  const leaseId = held.value.leaseId!;
  let buildId: string;
  try {
    const { build } = await deps.codebuild.send(
      new StartBuildCommand({
        projectName: deps.projectName,
        sourceTypeOverride: 'S3',
        sourceLocationOverride: event.source,
        environmentVariablesOverride: [
          ...event.environmentVariables.map((v) => ({ name: v.Name, value: v.Value, type: v.Type })),
          // The build's fence (buildspecs/deploy.yml) reads the lease with these before it deploys.
          { name: LEASE_ID_VARIABLE, value: leaseId, type: 'PLAINTEXT' },
          { name: 'STEPDEPLOY_LEASE_BUCKET', value: deps.bucket, type: 'PLAINTEXT' },
          { name: 'STEPDEPLOY_LEASE_KEY', value: leaseKey(event.environment), type: 'PLAINTEXT' },
          { name: 'STEPDEPLOY_LEASE_REGION', value: deps.region, type: 'PLAINTEXT' },
        ],
        // A StartBuild sent again (an SDK retry after a lost answer, or a retry of this Deploy
        // within 5 minutes, CodeBuild's validity for the token) answers the same build.
        idempotencyToken: leaseId,
      }),
    );
    buildId = build!.id!;
  } catch (err) {
    // Given back: should the build have started anyway (an answer lost), its fence stops it.
    try {
      await releaseLease(deps.s3, deps.bucket, held, `StartBuild failed: ${(err as Error).name}`, now());
    } catch (releaseError) {
      console.error(`could not give the ${event.environment} lease back: ${(releaseError as Error).message}`);
    }
    throw err;
  }
  return recordBuild(event, deps, held, buildId);
}

/**
 * Writes the build id into this take of the lease (after a lost conditional write — a waiter
 * registering, S3's 409 — reads again and writes again). If the lease was taken over or given back
 * meanwhile, the build is stopped (its fence has stopped it already, unless it ran before).
 */
async function recordBuild(
  event: DeployEvent,
  deps: DeployDependencies,
  held: JsonObject<DeployLease>,
  buildId: string,
): Promise<DeployStarted> {
  let current: JsonObject<DeployLease> | undefined = held;
  for (let attempt = 0; attempt < LEASE_ATTEMPTS && current; attempt += 1) {
    const lease = current.value;
    if (!sameTake(lease, held.value)) break;
    if (lease.released) {
      // deploy-complete gave it back: the build already ended (its end went to the task), or the
      // execution ended (the build is being stopped; make sure).
      if (!BUILD_END_OUTCOMES.has(lease.outcome ?? '')) await stopQuietly(deps.codebuild, buildId);
      return { buildId };
    }
    if (lease.buildId === buildId) return { buildId };
    if ((await writeLease(deps.s3, deps.bucket, { ...lease, buildId }, current)) !== undefined) return { buildId };
    current = await readLease(deps.s3, deps.bucket, event.environment);
  }
  if (current && sameTake(current.value, held.value)) {
    // Still ours, but every write lost: the build runs under its lease id, findable without the record.
    return { buildId };
  }
  await stopQuietly(deps.codebuild, buildId);
  throw new DeployLeaseBusyError(
    `${event.environment}: the deploy lease of ${event.execution} was taken over before its build ${buildId} was recorded; the build was stopped`,
  );
}
