import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { logicalIdOf } from './logical-id';
import { REDRIVE_WINDOW_DAYS } from '../tasks/await-approval/approval-record';
import { SNAPSHOT_EXPIRY_MARGIN_DAYS } from '../tasks/resolve-source/resolve-source';

/** The S3 layout (DESIGN.md "S3 layout"): each prefix has its own lifecycle and its own readers and writers. */
export const SOURCES_PREFIX = 'sources/';
export const ARTIFACTS_PREFIX = 'artifacts/';
export const DEPLOYMENTS_PREFIX = 'deployments/';
/** AwaitApproval's task tokens (approvals/<environment>/<execution>.json): only the two approval functions read it. */
export const APPROVALS_PREFIX = 'approvals/';
/** combine-sources' cache index (combined/<hash>.json → an earlier source.zip): not a contract, expires with the artifacts. */
export const COMBINED_PREFIX = 'combined/';

export interface ArtifactsBucketProps {
  /**
   * How long combined artifacts and build outputs (`artifacts/`) are kept. Redrive and re-deploys of
   * an old execution need them, so keep them longer than the longest you would redrive.
   * @default Duration.days(90)
   */
  readonly artifactsExpiration?: Duration;
  /**
   * How long source snapshots (`sources/`) are kept. They are content-addressed: a later fetch of the
   * same commit reuses the snapshot, so they outlive single executions. More than 16 days: one
   * within 16 days of its expiry is fetched again (SNAPSHOT_EXPIRY_MARGIN_DAYS).
   * @default Duration.days(180)
   */
  readonly sourcesExpiration?: Duration;
  /**
   * How long approval records (`approvals/<env>/<execution>.json`) are kept after their last write.
   * A wait lasts at most 12 hours (approval.timeoutMinutes), so what expires is decided, timed-out
   * or abandoned requests; a timed-out one must outlive the 14 days in which its execution can be
   * redriven (ApprovalTimedOut reads it to ask again), so more than 14 days.
   * @default Duration.days(30)
   */
  readonly approvalsExpiration?: Duration;
  /**
   * How long overwritten or expired object versions are kept. `deployments/` current objects are kept forever.
   * @default Duration.days(30)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * How long server access logs are kept.
   * @default Duration.days(365)
   */
  readonly accessLogsExpiration?: Duration;
  /**
   * What happens to the buckets when the stack is deleted.
   * @default RemovalPolicy.RETAIN — `deployments/` is the record of what is deployed where.
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The pipeline's one artifacts bucket (versioned, SSE-S3, SSL only, no public access, server access
 * logs to a logs bucket) and prefix-scoped grants: each role gets only the prefixes it needs.
 */
export class ArtifactsBucket extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly accessLogsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArtifactsBucketProps = {}) {
    super(scope, id);
    // Server access logs are delivered under a bucket policy rather than the legacy log-delivery
    // ACL, so the logs bucket keeps ACLs disabled (the default for new apps; cdk.json predates it).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const artifactsExpiration = wholeDays('artifactsExpiration', props.artifactsExpiration ?? Duration.days(90));
    const sourcesExpiration = beyondReuseMargin(
      wholeDays('sourcesExpiration', props.sourcesExpiration ?? Duration.days(180)),
    );
    const approvalsExpiration = beyondRedriveWindow(
      wholeDays('approvalsExpiration', props.approvalsExpiration ?? Duration.days(30)),
    );
    const noncurrentVersionExpiration = wholeDays(
      'noncurrentVersionExpiration',
      props.noncurrentVersionExpiration ?? Duration.days(30),
    );
    const accessLogsExpiration = wholeDays('accessLogsExpiration', props.accessLogsExpiration ?? Duration.days(365));
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      // S3 server access logging delivers only to buckets with SSE-S3 default encryption.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: accessLogsExpiration }],
      removalPolicy,
    });
    Validations.of(this.accessLogsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket is the destination of the artifacts bucket server access logs; logging it too would need a third bucket with the same finding.',
    });

    this.bucket = new s3.Bucket(this, 'Resource', {
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'artifacts-bucket/',
      lifecycleRules: [
        { id: 'expire-artifacts', prefix: ARTIFACTS_PREFIX, expiration: artifactsExpiration },
        // An index outliving the artifact it points to is only a miss (combine falls back), but need not linger.
        { id: 'expire-combine-cache', prefix: COMBINED_PREFIX, expiration: artifactsExpiration },
        { id: 'expire-source-snapshots', prefix: SOURCES_PREFIX, expiration: sourcesExpiration },
        // Decided requests (their task tokens dead once the task ended); kept past the redrive window.
        { id: 'expire-approval-records', prefix: APPROVALS_PREFIX, expiration: approvalsExpiration },
        {
          // Covers `deployments/` too: only replaced versions of current.json go, history entries stay.
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration,
          expiredObjectDeleteMarker: true,
        },
        // combine-sources uploads source.zip in parts; a crashed upload must not leave parts billed forever.
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      removalPolicy,
    });
  }

  public get bucketName(): string {
    return this.bucket.bucketName;
  }

  /** s3:GetObject (and GetObjectVersion) on `<prefix>*`. */
  public grantReadObjects(grantee: iam.IGrantable, prefix: string): iam.Grant {
    return this.grantObjects(grantee, prefix, ['s3:GetObject', 's3:GetObjectVersion']);
  }

  /**
   * s3:PutObject on `<prefix>*` (multipart uploads and conditional writes with If-None-Match /
   * If-Match need nothing more), and s3:AbortMultipartUpload so a failed upload cleans up its parts.
   */
  public grantWriteObjects(grantee: iam.IGrantable, prefix: string): iam.Grant {
    return this.grantObjects(grantee, prefix, ['s3:PutObject', 's3:AbortMultipartUpload']);
  }

  /**
   * s3:GetObject on the keys matching `patterns` (such as each environment's lease.json under
   * deployments/), for a reader that needs a few named objects of a folder rather than all of it.
   */
  public grantReadKeys(grantee: iam.IGrantable, ...patterns: string[]): iam.Grant {
    return this.grantKeys(grantee, patterns, ['s3:GetObject']);
  }

  /**
   * s3:PutObject on the keys matching `patterns` (conditional writes with If-None-Match / If-Match
   * need nothing more). No multipart uploads: these are small objects written in one request.
   */
  public grantWriteKeys(grantee: iam.IGrantable, ...patterns: string[]): iam.Grant {
    return this.grantKeys(grantee, patterns, ['s3:PutObject']);
  }

  /**
   * s3:ListBucket, limited to keys under the prefixes. Besides listing, it makes S3 answer a
   * read of a missing key with 404 instead of 403, which tasks rely on to tell "absent" apart.
   */
  public grantList(grantee: iam.IGrantable, ...prefixes: string[]): iam.Grant {
    if (prefixes.length === 0) {
      throw new Error(
        'grantList needs at least one prefix, got none; pass the folders the grantee lists, e.g. "deployments/"',
      );
    }
    prefixes.forEach(checkPrefix);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes.map((prefix) => `${prefix}*`) } },
    });
  }

  /** What CodeBuild checks on a bucket before it reads an S3 source or uploads artifacts. */
  public grantBucketLocation(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetBucketAcl', 's3:GetBucketLocation'],
      resourceArns: [this.bucket.bucketArn],
    });
  }

  /** The cdk-nag finding id of the `<prefix>*` resource wildcard these grants create. */
  public wildcardFindingId(prefix: string): string {
    return this.keyFindingId(`${prefix}*`);
  }

  /** The cdk-nag finding id of a key pattern with a wildcard (grantReadKeys, grantWriteKeys). */
  public keyFindingId(pattern: string): string {
    return `AwsSolutions-IAM5[Resource::<${logicalIdOf(this.bucket)}.Arn>/${pattern}]`;
  }

  /** Acknowledges the wildcard of a key pattern on `scope` (a role or policy), saying what it stands for. */
  public acknowledgeKeyWildcard(scope: Construct, pattern: string, why: string): void {
    checkKeyPattern(pattern);
    Validations.of(scope).acknowledge({
      id: this.keyFindingId(pattern),
      reason: `Keys ${pattern} are named at run time: ${why}`,
    });
  }

  /**
   * Acknowledges the `<prefix>*` wildcard on `scope` (a role or policy): object keys under a
   * prefix hold an environment, execution or commit only known at run time.
   */
  public acknowledgePrefixWildcard(scope: Construct, prefix: string, why: string): void {
    Validations.of(scope).acknowledge({
      id: this.wildcardFindingId(prefix),
      reason: `Keys under ${prefix} are named at run time: ${why}`,
    });
  }

  private grantKeys(grantee: iam.IGrantable, patterns: string[], actions: string[]): iam.Grant {
    if (patterns.length === 0) {
      throw new Error(
        'key grants need at least one key pattern, got none; pass the keys the grantee reads or writes, e.g. "deployments/*/lease.json"',
      );
    }
    patterns.forEach(checkKeyPattern);
    return iam.Grant.addToPrincipal({
      grantee,
      actions,
      resourceArns: patterns.map((pattern) => this.bucket.arnForObjects(pattern)),
    });
  }

  private grantObjects(grantee: iam.IGrantable, prefix: string, actions: string[]): iam.Grant {
    checkPrefix(prefix);
    return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [this.bucket.arnForObjects(`${prefix}*`)] });
  }
}

function checkPrefix(prefix: string): void {
  if (!/^[a-z]+\/$/.test(prefix)) {
    throw new Error(
      `prefix must be one of the layout's folders such as "${ARTIFACTS_PREFIX}" (lowercase, ending in "/"), got ${JSON.stringify(prefix)}`,
    );
  }
}

function checkKeyPattern(pattern: string): void {
  if (!/^[a-z]+\/[A-Za-z0-9._*-]+(\/[A-Za-z0-9._*-]+)*$/.test(pattern)) {
    throw new Error(
      `key pattern must start with one of the layout's folders and name keys in it, such as "${DEPLOYMENTS_PREFIX}*/lease.json", got ${JSON.stringify(pattern)}`,
    );
  }
}

/**
 * ResolveSource fetches again a snapshot that expires within SNAPSHOT_EXPIRY_MARGIN_DAYS, so that a
 * redrive finds it: with snapshots kept no longer than that, none would ever be reused, and a
 * fresh one could expire before a redrive.
 */
function beyondReuseMargin(duration: Duration): Duration {
  if (Token.isUnresolved(duration.toSeconds())) return duration;
  if (duration.toDays() <= SNAPSHOT_EXPIRY_MARGIN_DAYS) {
    throw new Error(
      `sourcesExpiration must be more than ${SNAPSHOT_EXPIRY_MARGIN_DAYS} days (ResolveSource fetches again a snapshot that expires within ${SNAPSHOT_EXPIRY_MARGIN_DAYS} days, so that a redrive still finds it), got ${duration.toHumanString()}; use Duration.days(${SNAPSHOT_EXPIRY_MARGIN_DAYS + 1}) or more`,
    );
  }
  return duration;
}

/** A redriven ApprovalTimedOut reads the approval record: it must outlive the redrive window. */
function beyondRedriveWindow(duration: Duration): Duration {
  if (Token.isUnresolved(duration.toSeconds())) return duration;
  if (duration.toDays() <= REDRIVE_WINDOW_DAYS) {
    throw new Error(
      `approvalsExpiration must be more than ${REDRIVE_WINDOW_DAYS} days (an execution that timed out waiting for approval can be redriven for ${REDRIVE_WINDOW_DAYS} days, and its redrive reads the approval record to ask again), got ${duration.toHumanString()}; use Duration.days(${REDRIVE_WINDOW_DAYS + 1}) or more`,
    );
  }
  return duration;
}

function wholeDays(name: string, duration: Duration): Duration {
  if (Token.isUnresolved(duration.toSeconds())) return duration;
  const days = duration.toDays({ integral: false });
  if (!Number.isInteger(days) || days < 1) {
    throw new Error(
      `${name} must be a whole number of days, at least 1 (S3 lifecycle rules count in days), got ${duration.toHumanString()}; use Duration.days(n)`,
    );
  }
  return duration;
}
