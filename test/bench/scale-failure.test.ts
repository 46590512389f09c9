import { failureCause } from '../../bench/scale';
import { depsFor, removeDir, request, settle, tempDir } from '../local/codebuild/helpers';

/** The scale figure reports an unexpected failure by its cause: for a failed build (a `.sync` task's cause is the Build), the phase that failed and why. */
describe('bench: the scale figure reads a failure cause', () => {
  test("names a failed build's phase and its message, from a Build the local CodeBuild failed", async () => {
    const root = tempDir('scale-cause');
    try {
      // Nothing matches the artifacts' files: UPLOAD_ARTIFACTS fails before any S3 call.
      const buildspec =
        "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\nartifacts:\n  files:\n    - 'missing/**/*'\n";
      const build = await settle(
        request(buildspec, {
          ArtifactsOverride: {
            Type: 'S3',
            Location: 'bucket',
            Packaging: 'ZIP',
            Name: 'out.zip',
            NamespaceType: 'NONE',
          },
        }),
        depsFor(root),
      );
      expect(build.BuildStatus).toBe('FAILED');
      expect(failureCause(JSON.stringify({ Build: build }))).toMatch(
        /^build phase UPLOAD_ARTIFACTS FAILED: CLIENT_ERROR .*missing/,
      );
    } finally {
      removeDir(root);
    }
  });

  test('keeps any other cause on one line of at most 300 characters, and says when there is none', () => {
    expect(failureCause('Lambda.Unknown\n  at line 2\tand more')).toBe('Lambda.Unknown at line 2 and more');
    const long = failureCause('x'.repeat(1000));
    expect(long).toHaveLength(300);
    expect(long.endsWith('…')).toBe(true);
    expect(failureCause(undefined)).toBe('(no cause)');
  });
});
