import { readFileSync } from 'node:fs';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import { parse as parseYaml } from 'yaml';

/**
 * Reads a buildspec file into an inline BuildSpec, so the project carries the buildspec it was
 * deployed with (a build's source is the combined artifact, which need not contain it).
 * `what` names the setting that chose the file, for the error message.
 */
export function loadBuildSpec(path: string, what: string): codebuild.BuildSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(
      `${what}: cannot read buildspec ${path} (${(err as Error).message}); create it or point ${what} at an existing file`,
      {
        cause: err,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new Error(`${what}: buildspec ${path} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(
      `${what}: buildspec ${path} must be a YAML mapping with "version: 0.2" and "phases", got ${JSON.stringify(parsed)}`,
    );
  }
  const version = String((parsed as Record<string, unknown>).version);
  if (version !== '0.2') {
    throw new Error(
      `${what}: buildspec ${path} must declare version 0.2, got ${JSON.stringify((parsed as Record<string, unknown>).version)}; set "version: 0.2"`,
    );
  }
  return codebuild.BuildSpec.fromObject(parsed as Record<string, unknown>);
}
