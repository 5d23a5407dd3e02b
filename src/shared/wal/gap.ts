/**
 * A gap: a look at the WAL that cannot prove that no committed frame escaped the archive. Thrown
 * by the checks of a look (file identity, continuity); the archiver ends the generation at its last
 * sync point, with an end reason that begins with GAP_PREFIX, and begins the next one.
 */
export class Gap extends Error {}

/** How the end reason of a generation ended at a gap begins. */
export const GAP_PREFIX = 'gap: ';
