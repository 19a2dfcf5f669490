/**
 * The server API of shared poll channels, as Centrifugo v6.8 names it: `shared_poll_publish`,
 * the backend's direct publish of an item's new value (key, data, version) to every connection
 * tracking the key, at once instead of at the next refresh cycle (docs/SHARED_POLL.md).
 *
 * Refusals are Centrifugo's: 107 without channel, key or a version ≥ 1, or when the channel is
 * not a shared_poll channel; 108 while the namespace's `shared_poll.publish_enabled` is false.
 * Bulwark adds 108 in `versionless` mode (Centrifugo documents direct publish as versioned
 * only: Bulwark's own versions there come from content hashes, which a backend's version
 * would collide with), and the key and size checks of a track (107, 106).
 *
 * The value goes through the shared poll store, like a refresh cycle's changes: kept only above
 * the stored version (versions never move back, whichever of a cycle and a publish comes
 * first), and delivered by every node to its own trackers. A publish that was not newer is not
 * an error: the result says `suppressed` (Bulwark's own, as `map_publish` does).
 *
 * @module
 */
import { z } from 'zod';
import type { ChannelRules } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { asRaw, type RawJSON } from '../protocol/types.js';
import { b64jsonField, channelField, jsonField, parseBody } from '../util/request-body.js';

/** SharedPollPublisher is the node's shared poll state as the API sees it. */
export interface SharedPollPublisher {
  /** publish stores and delivers an item's value; false when the version was not newer. */
  publish(channel: string, key: string, version: number, data: RawJSON): Promise<boolean>;
}

/** SharedPollApiContext is what the shared poll methods need from the node. */
export interface SharedPollApiContext {
  readonly node: {
    readonly config: Readonly<Pick<Config, 'protection' | 'shared_poll'>>;
    readonly rules: Pick<ChannelRules, 'resolve'>;
    readonly sharedPolls: SharedPollPublisher;
  };
}

/** SharedPollApiEntry is one method: its body schema and how it runs (as api-methods.ts's entries). */
export interface SharedPollApiEntry {
  readonly schema: z.ZodType;
  readonly repeatSafe: boolean;
  call(ctx: SharedPollApiContext, raw: unknown): Promise<unknown>;
}

const publishSchema = z
  .object({
    channel: channelField,
    key: z.string().min(1),
    data: jsonField.optional(),
    b64data: b64jsonField.optional(),
    version: z.number().int().min(1),
    // Accepted for Centrifugo compatibility; Bulwark has no publisher epoch yet (SHARED_POLL.md).
    epoch: z.string().optional(),
  })
  .refine((b) => b.data !== undefined || b.b64data !== undefined, { message: 'data or b64data required' });

/** checkChannel refuses what Centrifugo refuses, and versionless mode (see the module note). */
function checkChannel(ctx: SharedPollApiContext, channel: string): void {
  const opts = ctx.node.rules.resolve(channel).options;
  if (opts.subscription_type !== 'shared_poll') {
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: not a shared_poll channel');
  }
  if (!opts.shared_poll.publish_enabled) {
    throw new ProtocolError(ErrorCode.NotAvailable, 'not available: shared_poll.publish_enabled is false');
  }
  if (opts.shared_poll.mode !== 'versioned') {
    throw new ProtocolError(
      ErrorCode.NotAvailable,
      'not available: shared_poll_publish needs shared_poll.mode versioned',
    );
  }
}

/** checkKey applies a track's key rules: a key no client could track is refused (107). */
function checkKey(ctx: SharedPollApiContext, key: string): void {
  const max = ctx.node.config.shared_poll.max_key_length;
  if (Buffer.byteLength(key) > max || key.includes('\u0000')) {
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: key: longer than ${max} bytes or with a NUL byte`);
  }
}

/** sharedPollApiMethods is the table of the shared poll methods, merged into api-methods.ts's table. */
export const sharedPollApiMethods = {
  // Repeat-safe: the same version again is not newer, so a retry delivers nothing twice.
  shared_poll_publish: {
    schema: publishSchema,
    repeatSafe: true,
    async call(ctx: SharedPollApiContext, raw: unknown): Promise<unknown> {
      const p = parseBody(publishSchema, raw);
      checkChannel(ctx, p.channel);
      checkKey(ctx, p.key);
      const data = asRaw(p.b64data ?? p.data);
      const max = ctx.node.config.protection.publication_max_size;
      if (max > 0 && Buffer.byteLength(data) > max) {
        throw new ProtocolError(
          ErrorCode.LimitExceeded,
          `publication data larger than protection.publication_max_size (${max} bytes)`,
        );
      }
      const applied = await ctx.node.sharedPolls.publish(p.channel, p.key, p.version, data);
      return applied ? {} : { suppressed: true, suppress_reason: 'version' };
    },
  },
} satisfies Record<string, SharedPollApiEntry>;
