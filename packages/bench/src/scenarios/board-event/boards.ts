/**
 * The team boards: which players share a board, what a post and a poll look like, and which
 * deliveries a player is owed.
 *
 * @module
 */
import { type BenchMarker } from '../../load/bench-markers.js';
import type { SeqTracker } from '../../harness/stats.js';
import type { BoardOptions } from './types.js';

/** A reply's publications each start with this (Bulwark encodes `{"data":…,"offset":N}`). */
export const DATA_KEY = Buffer.from('{"data":');

export const TEXT =
  'Rally at the east gate when the event opens. Tanks hold the bridge, healers stay behind the second line, ' +
  'scouts report the boss spawn in team chat. Save your stamina potions for the final wave and do not chase stragglers. ';

/** channelOf names team t's board. */
export const channelOf = (team: number): string => `board:team.${team}`;

/** teamOf is player i's team. */
export const teamOf = (player: number, teamSize: number): number => Math.floor(player / teamSize);

/** membersOf is how many players team t has. */
export function membersOf(team: number, opts: Pick<BoardOptions, 'players' | 'teamSize'>): number {
  return Math.max(0, Math.min(opts.teamSize, opts.players - team * opts.teamSize));
}

/**
 * postData encodes one board post of about `bytes` bytes: the bench markers first (when
 * `marker` is given; prefilled posts have none), then an author and text, as a real board entry.
 */
export function postData(
  bytes: number,
  author: string,
  marker?: Omit<BenchMarker, 'channel'> & { team: number },
): string {
  const head = marker
    ? `{"bch":${marker.team},"bseq":${marker.seq},"bts":${marker.sentAtMicros},"author":"${author}","text":"`
    : `{"author":"${author}","text":"`;
  const want = Math.max(0, bytes - head.length - 2);
  return `${head}${TEXT.repeat(Math.ceil(want / TEXT.length)).slice(0, want)}"}`;
}

/**
 * firstSightings marks the posts of one poll reply (`markers`) as seen by a player of `team`
 * (`seen`) and returns the staleness, ms, of those the player had not seen before: reply
 * receive time `atMs` − the post's send time (both on the clock of `performance.now()`),
 * oldest post first. Posts of another channel are ignored.
 */
export function firstSightings(
  seen: SeqTracker,
  team: number,
  markers: readonly BenchMarker[],
  atMs: number,
): number[] {
  const out: number[] = [];
  // Oldest first (a newest-first page is read in reverse), so that the tracker does not count
  // a page's order as reordering.
  for (const m of [...markers].sort((a, b) => a.seq - b.seq)) {
    if (m.channel !== team || seen.has(m.seq)) continue;
    seen.record(m.seq);
    out.push(atMs - m.sentAtMicros / 1000);
  }
  return out;
}

/** owedDeliveries is Σ over teams of posts published to it × its members. */
export function owedDeliveries(
  publishedPerTeam: readonly number[],
  opts: Pick<BoardOptions, 'players' | 'teamSize'>,
): number {
  return publishedPerTeam.reduce((n, posts, t) => n + posts * membersOf(t, opts), 0);
}

/** pollBody is the newest-page poll of team t's board (newest first). */
export const pollBody = (team: number, page: number): string =>
  `"history":{"channel":"${channelOf(team)}","limit":${page},"reverse":true}`;

/** pollSinceBody asks for what team t's board got after `offset` of `epoch`, oldest first. */
export const pollSinceBody = (team: number, page: number, offset: number, epoch: string): string =>
  `"history":{"channel":"${channelOf(team)}","limit":${page},"since":{"offset":${offset},"epoch":${JSON.stringify(epoch)}}}`;
