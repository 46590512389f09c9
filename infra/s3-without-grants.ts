import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/**
 * CodeBuild S3 source and artifacts that grant nothing on their own. `Source.s3` and
 * `Artifacts.s3` grant the project read (or read/write) on the whole bucket; stepdeploy's projects
 * get only the prefixes each one needs (ArtifactsBucket.grant*), so the binding must add nothing.
 */

export interface S3SourceWithoutGrantProps {
  readonly bucket: s3.IBucket;
  /** Object key of the default source; every execution overrides it. */
  readonly key: string;
}

export class S3SourceWithoutGrant implements codebuild.ISource {
  public readonly type = 'S3';
  public readonly badgeSupported = false;

  constructor(private readonly props: S3SourceWithoutGrantProps) {}

  public bind(_scope: Construct, _project: codebuild.IProject): codebuild.SourceConfig {
    return { sourceProperty: { type: this.type, location: `${this.props.bucket.bucketName}/${this.props.key}` } };
  }
}

export interface S3ArtifactsWithoutGrantProps {
  readonly bucket: s3.IBucket;
  /** Folder of the artifact, without a trailing "/". */
  readonly path: string;
  /** Artifact name; with `overrideArtifactName` the buildspec's `artifacts.name` replaces it. */
  readonly name: string;
  /**
   * Let the buildspec name the artifact (`artifacts.name`), evaluated at build time.
   * @default false
   */
  readonly overrideArtifactName?: boolean;
}

export class S3ArtifactsWithoutGrant implements codebuild.IArtifacts {
  public readonly type = 'S3';

  constructor(private readonly props: S3ArtifactsWithoutGrantProps) {}

  public bind(_scope: Construct, _project: codebuild.IProject): codebuild.ArtifactsConfig {
    return {
      artifactsProperty: {
        type: this.type,
        location: this.props.bucket.bucketName,
        path: this.props.path,
        name: this.props.name,
        namespaceType: 'NONE',
        packaging: 'ZIP',
        overrideArtifactName: this.props.overrideArtifactName ?? false,
      },
    };
  }
}
