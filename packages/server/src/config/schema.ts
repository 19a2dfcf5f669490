/**
 * The configuration schema: the single source of truth for every key, its type, default and
 * documentation (`.describe()`). Where Centrifugo v6 has a concept, the key has Centrifugo's
 * name and place, so a Centrifugo config works for what both support. Bulwark's own additions
 * live in sections of their own (`node`, `protection`, `proxy`, `drain`, `demo`).
 *
 * Every object is strict: an unknown key is an error, never silently ignored (incident 3).
 * Durations are Go-style strings ("25s") and are parsed to milliseconds.
 *
 * This file assembles the sections (sections/*.ts, one per concept) in the order the docs list
 * them, and adds the cross-key rules (cross-key-rules.ts).
 *
 * @module
 */
import { z } from 'zod';
import { configIssues } from './cross-key-rules.js';
import { adminSection } from './sections/admin.js';
import { channelSection } from './sections/channel.js';
import { clientSection } from './sections/client.js';
import { brokerSection } from './sections/broker.js';
import { engineSection } from './sections/engine.js';
import { outboxSection } from './sections/outbox.js';
import { presenceManagerSection } from './sections/presence-manager.js';
import { consumersSection } from './sections/consumers.js';
import {
  healthSection,
  httpApiSection,
  httpServerSection,
  prometheusSection,
  websocketSection,
} from './sections/http.js';
import { demoSection, drainSection, logSection, nodeSection, shutdownSection } from './sections/node.js';
import { protectionSection } from './sections/protection.js';
import { proxiesSection, proxySection } from './sections/proxy.js';
import { rpcSection } from './sections/rpc.js';
import { sharedPollSection } from './sections/shared-poll.js';
import {
  emulationSection,
  httpStreamSection,
  sseSection,
  uniHttpStreamSection,
  uniSseSection,
} from './sections/transports.js';
import { uniWebsocketSection } from './sections/uni-websocket.js';

export { duration } from './sections/common.js';
export { channelOptionsShape, type ChannelOptions } from './sections/channel.js';
export type { ProxyConfig } from './sections/proxy.js';

/** configSchema validates a whole Bulwark configuration. */
export const configSchema = z
  .strictObject({
    http_server: httpServerSection,
    log: logSection,
    client: clientSection,
    websocket: websocketSection,
    http_stream: httpStreamSection,
    sse: sseSection,
    emulation: emulationSection,
    uni_http_stream: uniHttpStreamSection,
    uni_sse: uniSseSection,
    uni_websocket: uniWebsocketSection,
    channel: channelSection,
    rpc: rpcSection,
    proxies: proxiesSection,
    shared_poll: sharedPollSection,
    http_api: httpApiSection,
    prometheus: prometheusSection,
    health: healthSection,
    engine: engineSection,
    broker: brokerSection,
    presence_manager: presenceManagerSection,
    outbox: outboxSection,
    consumers: consumersSection,
    shutdown: shutdownSection,
    node: nodeSection,
    protection: protectionSection,
    drain: drainSection,
    proxy: proxySection,
    demo: demoSection,
    admin: adminSection,
  })
  .superRefine((cfg, ctx) => {
    for (const issue of configIssues(cfg)) ctx.addIssue({ code: 'custom', ...issue });
  });

/** Config is a validated configuration: defaults applied, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
/** ConfigInput is what a config file may contain. */
export type ConfigInput = z.input<typeof configSchema>;
