import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Stage } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { stringify } from 'yaml';
import { loadConfig, parseConfig, type PipelineConfig } from '../shared/config';

/** The two ways a construct is given the pipeline config (see DeploymentPipelineProps). */
export interface PipelineConfigProps {
  readonly config?: PipelineConfig;
  readonly configPath?: string;
}

/**
 * The config from the props: `config` validated again (a JavaScript caller may pass any object,
 * and validating fills in the defaults), else the file at `configPath`.
 */
export function configOf(props: PipelineConfigProps, construct: string): PipelineConfig {
  if (props.config !== undefined) return parseConfig(props.config, `${construct} config`);
  if (props.configPath !== undefined) return loadConfig(props.configPath);
  throw new Error(
    `${construct} needs the pipeline config, got neither config nor configPath; pass { configPath: 'stepdeploy.config.yml' } or { config: loadConfig('stepdeploy.config.yml') }`,
  );
}

export interface PipelineConfigFile {
  readonly config: PipelineConfig;
  /** A file that holds the config, for the functions that bundle it. */
  readonly configPath: string;
  /** The folder the config's relative paths (buildspecs) are resolved from. */
  readonly configDir: string;
}

/**
 * The config and a file that holds it. Given as an object only, the config is written into the
 * cloud assembly folder (named by its content, so synthesis stays deterministic), and its paths are
 * relative to the working directory: where `cdk` runs the app, beside cdk.json.
 */
export function pipelineConfigFileOf(
  scope: IConstruct,
  props: PipelineConfigProps,
  construct: string,
): PipelineConfigFile {
  const config = configOf(props, construct);
  if (props.configPath !== undefined) {
    const configPath = resolve(props.configPath);
    if (!existsSync(configPath)) {
      throw new Error(
        `configPath must be an existing file (validate-input bundles it), got ${props.configPath}; pass the path the config was loaded from`,
      );
    }
    return { config, configPath, configDir: dirname(configPath) };
  }
  const text = stringify(config);
  const folder = Stage.of(scope)?.outdir;
  if (folder === undefined) {
    throw new Error(`${construct} ${scope.node.path} is not inside a CDK App; create its stack in an App`);
  }
  mkdirSync(folder, { recursive: true });
  const configPath = join(
    folder,
    `stepdeploy.config.${createHash('sha256').update(text).digest('hex').slice(0, 16)}.yml`,
  );
  writeFileSync(configPath, text);
  return { config, configPath, configDir: process.cwd() };
}
