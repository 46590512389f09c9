/**
 * The symlinks of one combined artifact, resolved as the build's file system will resolve them
 * once the artifact is extracted. Checking each link's own target text is not enough: with
 * `a/b/up0 -> ../..` and `a/b/up1 -> up0/..`, the text "up0/.." looks like `a/b`, but the file
 * system follows up0 first and lands above the artifact. Entries arrive in zip order, so a link
 * may lead through one that comes later: every link is resolved once all of them are known
 * (`escaping`), through all the others.
 */
export class SymlinkTable {
  private readonly links = new Map<string, { readonly target: string; readonly owner: string }>();

  /** Records the link at `path` (in the artifact) with its target text; `owner` names where it comes from in an error. */
  add(path: string, target: string, owner: string): void {
    this.links.set(path, { target, owner });
  }

  /** The first link (in the order added) that leads outside the artifact or cannot be followed, and why; or undefined. */
  escaping(): { readonly path: string; readonly owner: string; readonly why: string } | undefined {
    for (const [path, { owner }] of this.links) {
      const outcome = resolveLink(this.links, path);
      if ('outside' in outcome)
        return {
          path,
          owner,
          why: `points outside the artifact through other links (it resolves to ${outcome.outside})`,
        };
      if ('loop' in outcome) {
        return {
          path,
          owner,
          why: `is a cycle of links or a chain of more than ${MAX_FOLLOWS} (the build could not follow it)`,
        };
      }
    }
    return undefined;
  }
}

/** Linux's MAXSYMLINKS: a lookup that follows more links fails with ELOOP, so nothing past it can be reached. */
export const MAX_FOLLOWS = 40;

export type Resolution = { readonly inside: string } | { readonly outside: string } | { readonly loop: true };

/**
 * Where `path` leads, following every link on the way (its own last segment too) as a lookup
 * does: a segment that is a link is replaced by its target, relative to the link's folder, and
 * `..` then leaves what the link led to, not what its text says. A path that names nothing in the
 * artifact is taken as folders (it cannot lead anywhere a folder could not). `outside` is the
 * first point where the walk leaves the artifact: an absolute target, or `..` above its root.
 */
export function resolveLink(links: ReadonlyMap<string, { readonly target: string }>, path: string): Resolution {
  const reached: string[] = [];
  // Segments still to walk, last first, so that a link's target is pushed in front of them.
  const pending = path.split('/').reverse();
  let follows = 0;
  while (pending.length > 0) {
    const segment = pending.pop()!;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (reached.length === 0) return { outside: ['..', ...pending.slice().reverse()].join('/') };
      reached.pop();
      continue;
    }
    reached.push(segment);
    const link = links.get(reached.join('/'));
    if (link === undefined) continue;
    follows += 1;
    if (follows > MAX_FOLLOWS) return { loop: true };
    reached.pop();
    if (link.target.startsWith('/')) return { outside: link.target };
    pending.push(...link.target.split('/').reverse());
  }
  return { inside: reached.join('/') };
}
