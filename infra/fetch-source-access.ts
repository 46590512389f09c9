import type { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  CONNECTION_ONLY_SOURCE_TYPES,
  SOURCE_AUTH_OVERRIDE_TYPES,
  sourceTypeOf,
  type SourceConfig,
} from '../shared/config';
import { ConfigError } from '../shared/errors';

/** A CodeCommit HTTPS clone URL: its region and repository name are all the ARN needs besides the account. */
const CODECOMMIT_URL =
  /^https:\/\/git-codecommit(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?\/v1\/repos\/([A-Za-z0-9._-]{1,100})\/?$/;

/** What CodeBuild calls on a connection to clone through it (CodeBuild user guide, GitLab connections). */
const CONNECTION_ACTIONS = ['GetConnectionToken', 'GetConnection'] as const;

/**
 * The ARN of the CodeCommit repository a source names. CodeBuild clones it with the fetch
 * project's role, so the repository is in the stack's account; the region comes from the URL.
 */
export function codeCommitRepositoryArn(stack: Stack, name: string, repository: string): string {
  const match = CODECOMMIT_URL.exec(repository);
  if (!match) {
    throw new ConfigError(
      `sources.${name}.repository: cannot tell the CodeCommit repository from ${JSON.stringify(repository)}, so the fetch project cannot be granted codecommit:GitPull on it; ` +
        'use the HTTPS clone URL CodeCommit shows (https://git-codecommit.<region>.amazonaws.com/v1/repos/<repository>) or fix "type"',
    );
  }
  const [, region, repositoryName] = match;
  return stack.formatArn({ service: 'codecommit', region, resource: repositoryName! });
}

/**
 * What the fetch project's role needs to clone the configured sources, and nothing for a source
 * that needs nothing: `codecommit:GitPull` on each CodeCommit repository, and the connection
 * actions on each connection, under the connection's own service prefix (an IAM statement must use
 * the prefix of the resource's ARN: codeconnections, or codestar-connections for older ones).
 * GitHub, GitHub Enterprise and Bitbucket without a connection clone with the account's source
 * credential, which CodeBuild holds: no IAM. GitLab has no other credential than a connection.
 * Each connection is granted on its own ARN: a source's fetch build names it (SourceAuthOverride),
 * and the role may use no connection the config does not name.
 */
export function fetchSourceStatements(
  stack: Stack,
  sources: Readonly<Record<string, SourceConfig>>,
): iam.PolicyStatement[] {
  const repositories = new Set<string>();
  const connections = new Map<string, Set<string>>();
  for (const [name, source] of Object.entries(sources)) {
    const type = sourceTypeOf(source);
    if (type === 'CODECOMMIT') repositories.add(codeCommitRepositoryArn(stack, name, source.repository));
    if (source.connectionArn !== undefined) {
      // GitHub, GitLab and Bitbucket builds take the source's own connection (SourceAuthOverride,
      // FetchSourceThroughConnection). StartBuild takes no override for GitHub Enterprise: its
      // builds clone with the account's one credential for it, so two connections cannot both be it.
      const other = SOURCE_AUTH_OVERRIDE_TYPES.has(type)
        ? undefined
        : Object.entries(sources).find(
            ([, s]) =>
              s.connectionArn !== undefined && s.connectionArn !== source.connectionArn && sourceTypeOf(s) === type,
          );
      if (other) {
        throw new ConfigError(
          `sources.${name}.connectionArn and sources.${other[0]}.connectionArn name different connections for ${type}; StartBuild takes no per-build connection for ${type} (its SourceAuthOverride applies to GitHub, GitLab and Bitbucket), so every ${type} source clones with the one connection imported as the account's ${type} source credential: use the same connectionArn for both`,
        );
      }
      const prefix = source.connectionArn.split(':')[2]!;
      connections.set(prefix, (connections.get(prefix) ?? new Set()).add(source.connectionArn));
    } else if (CONNECTION_ONLY_SOURCE_TYPES.has(type)) {
      throw new ConfigError(
        `sources.${name}: CodeBuild reaches ${type} repositories only through a CodeConnections connection; create one (README "Deploy to AWS") and set sources.${name}.connectionArn to its ARN`,
      );
    }
  }
  const statements: iam.PolicyStatement[] = [];
  if (repositories.size > 0) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'CloneCodeCommitSources',
        actions: ['codecommit:GitPull'],
        resources: [...repositories],
      }),
    );
  }
  for (const [prefix, arns] of [...connections].sort(([a], [b]) => a.localeCompare(b))) {
    statements.push(
      new iam.PolicyStatement({
        sid: prefix === 'codeconnections' ? 'CloneThroughConnections' : 'CloneThroughLegacyConnections',
        actions: CONNECTION_ACTIONS.map((action) => `${prefix}:${action}`),
        resources: [...arns],
      }),
    );
  }
  return statements;
}
