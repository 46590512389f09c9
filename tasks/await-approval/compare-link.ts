/**
 * A link to the changes between what is deployed and what is about to be, for the hosts whose
 * compare pages have a known URL: github.com, gitlab.com and bitbucket.org (HTTPS repository URLs).
 * Other repositories get none rather than a guess.
 */
export function compareLink(repository: string, from: string, to: string): string | undefined {
  const match = /^https:\/\/(github\.com|gitlab\.com|bitbucket\.org)\/([A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)+)$/.exec(
    repository.replace(/\/+$/, '').replace(/\.git$/, ''),
  );
  if (!match || !/^[0-9a-f]{7,64}$/.test(from) || !/^[0-9a-f]{7,64}$/.test(to)) return undefined;
  const [, host, path] = match;
  const base = `https://${host}/${path}`;
  if (host === 'github.com') return `${base}/compare/${from}...${to}`;
  if (host === 'gitlab.com') return `${base}/-/compare/${from}...${to}`;
  // Bitbucket Cloud names the newer side first: compare/<source>%0D<destination>.
  return `${base}/branches/compare/${to}%0D${from}`;
}
