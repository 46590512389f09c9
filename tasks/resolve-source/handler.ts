import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { COMMIT_ID } from '../../shared/commit-id';
import { SOURCE_TYPES } from '../../shared/config';
import type { ResolvedSource } from '../../shared/contracts';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { cachedSecret, plainOrJsonField } from '../shared/secret';
import { RepositoryCredentialsError } from './errors';
import { branchReader, type RepositoryToken } from './remote-refs';
import { resolveSource } from './resolve-source';

/**
 * The credentials kept in a secret: the token itself, or JSON `{"token": "...", "username": "..."}`
 * (username only where the provider's default user does not fit); cached per container.
 */
function tokenReader(secrets: SecretsManagerClient): (secretName: string) => Promise<RepositoryToken> {
  const tokens = new Map<string, () => Promise<RepositoryToken>>();
  return (secretName) => {
    let read = tokens.get(secretName);
    if (read === undefined) {
      read = cachedSecret(secrets, secretName, {
        what: 'the repository credentials secret',
        expected: 'a token nor JSON {"token": "...", "username": "..."}',
        parse: parseRepositoryToken,
        error: (message, options) => new RepositoryCredentialsError(message, options),
      });
      tokens.set(secretName, read);
    }
    return read();
  };
}

export function parseRepositoryToken(value: string): RepositoryToken | undefined {
  const token = plainOrJsonField(value, 'token');
  if (token === undefined) return undefined;
  const username = value.startsWith('{') ? plainOrJsonField(value, 'username') : undefined;
  return username === undefined ? { token } : { token, username };
}

const eventSchema = z
  .object({
    source: z.object({
      name: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/),
      branch: z.string().min(1),
      repository: z.string().min(1),
      sourceType: z.enum(SOURCE_TYPES),
      path: z.string().min(1),
      credentialsSecret: z
        .string()
        .min(1)
        .nullish()
        .transform((v) => v ?? null),
      commit: z
        .string()
        .regex(COMMIT_ID)
        .nullish()
        .transform((v) => v ?? null),
    }),
  })
  .strict();

/** ResolveSource, inside FetchSources (workflows/deploy-pipeline.asl.json). */
export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  const readBranch = branchReader();
  const tokenFrom = tokenReader(new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER')));
  return async (event: unknown): Promise<ResolvedSource> => {
    const { source } = parseEvent(eventSchema, event, 'ResolveSource');
    return resolveSource(source, { s3, bucket: requireEnv(env, 'ARTIFACT_BUCKET'), readBranch, tokenFrom });
  };
}

export const handler = lambdaHandler(createHandler);
