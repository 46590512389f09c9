export { parseBuildspec, SUPPORTED_KEYS, type Buildspec, type ArtifactsSpec, type PhaseSpec } from './buildspec';
export { runBuild, startBuild, makeStartBuildSyncHandler, type RunnerDeps, type StartedBuild } from './runner';
export { BuildRegistry } from './registry';
export { toCodeBuildApiBuild } from './api-shape';
export {
  BuildFailedError,
  BuildspecError,
  SourceError,
  ArtifactsError,
  InvalidInputException,
  ResourceNotFoundException,
} from './errors';
export type * from './types';
