/**
 * The lobby verdict: the end state exact (every mirror equal to the server's map, at its
 * position), no slot ever held by two players (none at the end, no live change overwriting a
 * held slot, nothing lost or doubled in the stream), every slot held by the player who believes
 * it holds it, every player who found a free slot got one, every own take seen by its writer,
 * no errors other than the expected conflicts, and the writer's own delivery p99 within bound.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import type { LobbyOptions, LobbyResult } from './types.js';

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** judgeLobby turns a run's result into checks. */
export function judgeLobby(r: LobbyResult, o: LobbyOptions): Check[] {
  const x = r.exactness;
  const exactPercent = x.mirrors > 0 ? (x.equal / x.mirrors) * 100 : NaN;
  return [
    check('mirrors equal to the server’s map (exactness)', Math.round(exactPercent * 1000) / 1000, '==', 100, '%'),
    check('mirrors at the server’s stream position', x.atPosition, '==', x.mirrors, 'mirrors'),
    check('players in two slots at the end', x.doubleHeld, '==', 0, 'players'),
    check('slots held by a player who does not believe it', x.strangers, '==', 0, 'slots'),
    check('players believing in a slot the server does not give them', x.phantoms, '==', 0, 'players'),
    check('entries that are not a player’s slot', x.malformed, '==', 0, 'entries'),
    check('live sets of a slot already held (if_new broken)', r.stream.overwrites, '==', 0, 'changes'),
    check('live changes lost or doubled (offset gaps, repeats)', r.stream.gaps + r.stream.stale, '==', 0, 'changes'),
    check('players who found a free slot and never got one', r.players.starved, '==', 0, 'players'),
    check('own takes never seen by the writer', r.ownTakes.ok - r.ownTakes.delivered, '==', 0, 'writes'),
    check('slot writes failed other than 113', sum(r.joins.writeErrors) + sum(r.leaves.errors), '==', 0, 'writes'),
    check('subscribes failed', sum(r.joins.subscribeErrors), '==', 0, 'subscribes'),
    check(
      'players disconnected or unsubscribed by the server',
      sum(r.disconnected) + r.serverUnsubscribes,
      '==',
      0,
      'players',
    ),
    check('slots taken', r.joins.succeeded, '>', 0, 'slots'),
    ...bulwarkChecks(r),
    check('own write → delivery p99', r.latencyMs.own.p99, '<=', o.p99LimitMs, 'ms'),
  ];
}

/**
 * bulwarkChecks hold the server's own counts to what the clients saw: a 113 for every write it
 * suppressed as `key_exists`, an applied write for every slot taken and every leave. The leaves'
 * removals are counted once the reply came; a removal whose reply never came would show here.
 */
function bulwarkChecks(r: LobbyResult): Check[] {
  const b = r.bulwark;
  if (b === undefined) return [];
  return [
    check(
      "Bulwark's key_exists suppressions − clients' 113s",
      (b.suppressed['key_exists'] ?? 0) - r.conflicts.total,
      '==',
      0,
      'writes',
    ),
    check(
      "Bulwark's applied client sets − slots taken",
      (b.writes['publish'] ?? 0) - r.joins.succeeded,
      '==',
      0,
      'writes',
    ),
    check("Bulwark's applied client removals − leaves", (b.writes['remove'] ?? 0) - r.leaves.ok, '==', 0, 'writes'),
  ];
}
