/**
 * Environment variable names an environment's `variables` may not use, each with the reason. The
 * builds get `variables` through EnvironmentVariablesOverride, which wins over everything else in
 * the build's environment (CodeBuild: "the value in the start build operation call takes highest
 * precedence"), so one of these names would silently change what stepdeploy, CodeBuild or every
 * AWS SDK and CLI in the build does.
 */

const EXACT: ReadonlyMap<string, string> = new Map([
  ['ENVIRONMENT', "stepdeploy sets it to the environment's name"],
  ['AWS_REGION', 'stepdeploy sets it to the environment\'s region (set "region" instead)'],
  ['AWS_DEFAULT_REGION', 'stepdeploy sets it to the environment\'s region (set "region" instead)'],
  [
    'AWS_STS_REGIONAL_ENDPOINTS',
    "stepdeploy sets it so that the deploy role is assumed through STS in the environment's region",
  ],
  ['AWS_SDK_LOAD_CONFIG', "stepdeploy sets it so that the AWS SDK for JavaScript v2 reads the deploy role's profile"],
  ...['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN'].map(
    (name) =>
      [
        name,
        'credentials would replace the deploy role, and variables are plain text kept in the execution history: use "deployRoleArn"',
      ] as const,
  ),
  ...[
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
    'AWS_CONFIG_FILE',
    'AWS_SHARED_CREDENTIALS_FILE',
    'AWS_ROLE_ARN',
    'AWS_ROLE_SESSION_NAME',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
  ].map(
    (name) =>
      [
        name,
        'it would bypass the deploy role\'s profile that buildspecs/deploy.yml writes: use "deployRoleArn"',
      ] as const,
  ),
]);

const PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['CODEBUILD_', 'CodeBuild reserves the CODEBUILD_ prefix for its own variables'],
  [
    'STEPDEPLOY_',
    'stepdeploy reserves the STEPDEPLOY_ prefix for the variables it sets (tasks/combine-sources/environment.ts)',
  ],
  ['AWS_CONTAINER_', 'CodeBuild uses it to hand the build its credentials'],
  ['AWS_ENDPOINT_URL', 'it would send every AWS SDK and CLI in the build to another endpoint'],
];

/** Why `name` is reserved, or `undefined` when an environment may set it. */
export function reservedVariableReason(name: string): string | undefined {
  const exact = EXACT.get(name);
  if (exact !== undefined) return exact;
  return PREFIXES.find(([prefix]) => name.startsWith(prefix))?.[1];
}
