import type { CodeBuildEnvironmentVariable, CombineSourcesEvent, Manifest } from '../../shared/contracts';
import { reservedVariableReason } from '../../shared/reserved-variables';
import { VariableConflictError } from './errors';

const DEPLOY_ROLE_VARIABLE = 'STEPDEPLOY_DEPLOY_ROLE_ARN';

/** `feature-flags` → `FEATURE_FLAGS`: source names become part of variable names. */
export function variableSuffix(sourceName: string): string {
  return sourceName.toUpperCase().replace(/-/g, '_');
}

function plain(Name: string, Value: string): CodeBuildEnvironmentVariable {
  return { Name, Type: 'PLAINTEXT', Value };
}

/**
 * What the build job sees: where it deploys to (the environment, its account and region), what
 * it builds (each source's commit and branch) and the environment's own variables. The commits
 * come from the manifest, so that a redrive that finds an existing artifact describes exactly
 * the commits inside it. The region goes as STEPDEPLOY_REGION, not AWS_REGION: CodeBuild sets
 * AWS_REGION and AWS_DEFAULT_REGION itself, to the region the build runs in, and
 * buildspecs/deploy.yml exports the environment's region over them where the deploy needs it.
 */
export function buildEnvironment(
  manifest: Manifest,
  variables: CombineSourcesEvent['variables'],
  target: Pick<CombineSourcesEvent, 'account' | 'region'>,
): CodeBuildEnvironmentVariable[] {
  const own = [
    plain('ENVIRONMENT', manifest.environment),
    plain('STEPDEPLOY_EXECUTION', manifest.execution),
    plain('STEPDEPLOY_ACCOUNT', target.account),
    plain('STEPDEPLOY_REGION', target.region),
    ...(manifest.requestedBy === null ? [] : [plain('STEPDEPLOY_REQUESTED_BY', manifest.requestedBy)]),
    ...manifest.sources.flatMap((s) => [
      plain(`STEPDEPLOY_COMMIT_${variableSuffix(s.name)}`, s.commit),
      plain(`STEPDEPLOY_BRANCH_${variableSuffix(s.name)}`, s.branch),
    ]),
  ];
  // The config refuses these names already (shared/reserved-variables.ts); a plan made before
  // a name became reserved may still carry one into a redrive.
  const clashes = Object.keys(variables).filter((name) => reservedVariableReason(name) !== undefined);
  if (clashes.length > 0) {
    throw new VariableConflictError(
      `environment ${manifest.environment} declares reserved variable(s) ${clashes.map((name) => `${name} (${reservedVariableReason(name)})`).join(', ')}: ` +
        'rename or remove them in stepdeploy.config.yml',
    );
  }
  return [...own, ...Object.entries(variables).map(([name, value]) => plain(name, value))];
}

/** The deploy job also needs the role it assumes in the environment's account. */
export function deployEnvironment(
  build: ReadonlyArray<CodeBuildEnvironmentVariable>,
  deployRoleArn: string,
): CodeBuildEnvironmentVariable[] {
  return [...build, plain(DEPLOY_ROLE_VARIABLE, deployRoleArn)];
}
