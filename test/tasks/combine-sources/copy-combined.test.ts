import { S3Client } from '@aws-sdk/client-s3';
import { copyCombined } from '../../../tasks/combine-sources/copy-combined';
import { emptyManifest } from '../../helpers/manifest';

const MiB = 1024 * 1024;

describe('copyCombined', () => {
  it('fails on a part size S3 would refuse, naming the value', async () => {
    const manifest = emptyManifest();
    const index = {
      formatVersion: 3,
      sources: [],
      artifactKey: 'k',
      etag: '"e"',
      rangeStart: 0,
      rangeLength: 20 * MiB,
      foreignLength: 0,
      size: 21 * MiB,
      entryCount: 1,
    };

    await expect(
      copyCombined({ s3: new S3Client({}), bucket: 'b', key: 'k2', manifest, index, copyPartSize: 6 * MiB }),
    ).rejects.toThrow(`copyPartSize must be a whole number of bytes between 10 MiB and 5 GiB, got ${6 * MiB}`);
  });
});
