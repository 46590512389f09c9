import type { Manifest } from '../../shared/contracts';
import { createManifest } from '../../tasks/combine-sources/manifest';

/** The manifest of a combine with no sources and no variables, at the epoch: for tests of the zip ends and copies. */
export function emptyManifest(): Manifest {
  return createManifest(
    {
      environment: 'a',
      execution: 'e',
      requestedBy: null,
      account: '111111111111',
      region: 'eu-west-1',
      deployRoleArn: 'r',
      variables: {},
      sources: [],
    },
    new Date(0),
  );
}
