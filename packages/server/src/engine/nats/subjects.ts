/**
 * The NATS subject layout of the NATS broker (docs/NATS.md):
 *
 * - `<prefix>.ch.<token>`: publications, joins and leaves of one channel;
 * - `<prefix>.control`: control messages for every node.
 *
 * A channel name may hold anything, while in a subject `.` separates tokens, `*` and `>` are
 * wildcards and whitespace ends the subject. So the channel becomes one token: its UTF-8
 * bytes, with letters, digits and `_ - : @ = + , ! ~ #` kept as they are (channel names stay
 * readable in `nats sub` and server monitoring) and every other byte written `%XX` (upper-case
 * hex; `%` itself included). The empty channel is the token `%`, which no other name gives.
 * The mapping is one to one, so a subject never receives another channel's messages.
 *
 * @module
 */

/** Bytes written as themselves in a channel token. */
const KEPT = /^[A-Za-z0-9_\-:@=+,!~#]$/;

/** channelToken encodes a channel name as one NATS subject token; see the module comment. */
export function channelToken(channel: string): string {
  if (channel === '') return '%';
  let out = '';
  for (const byte of Buffer.from(channel, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && KEPT.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** tokenChannel decodes {@link channelToken}; undefined for a token it cannot have made. */
export function tokenChannel(token: string): string | undefined {
  if (token === '%') return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i]!;
    if (ch === '%') {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (KEPT.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Subjects names the subjects of one deployment (one prefix). */
export class Subjects {
  /** Every channel subject starts with this. */
  readonly channelPrefix: string;
  /** The control subject. */
  readonly control: string;

  constructor(readonly prefix: string) {
    this.channelPrefix = `${prefix}.ch.`;
    this.control = `${prefix}.control`;
  }

  /** channel returns the subject of a channel. */
  channel(channel: string): string {
    return this.channelPrefix + channelToken(channel);
  }

  /** channelOf returns the channel of a channel subject, or undefined for any other subject. */
  channelOf(subject: string): string | undefined {
    if (!subject.startsWith(this.channelPrefix)) return undefined;
    return tokenChannel(subject.slice(this.channelPrefix.length));
  }
}
