/**
 * Surveys: ask every other node a question through the control channel and gather the
 * answers, for API methods whose answer spans the cluster (`channels`). The caller says how
 * many answers to expect (the live nodes it knows); the survey ends when they are all in or
 * at the timeout, whichever comes first — a node that died mid-survey delays the answer, it
 * never blocks it.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { ControlBus } from './control.js';

/** SurveyOp is a question nodes know how to answer. */
export type SurveyOp = 'channels';

interface Pending {
  replies: unknown[];
  expected: number;
  done: () => void;
}

/** Surveys runs the surveys of one node. */
export class Surveys {
  readonly #bus: ControlBus;
  readonly #timeoutMs: number;
  readonly #pending = new Map<string, Pending>();

  constructor(bus: ControlBus, timeoutMs: number) {
    this.#bus = bus;
    this.#timeoutMs = timeoutMs;
  }

  /** ask sends `op` to every other node and resolves with their answers (at most `expected`). */
  async ask(op: SurveyOp, expected: number): Promise<unknown[]> {
    if (expected <= 0) return [];
    const id = randomUUID();
    const replies: unknown[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<void>((resolve) => {
      this.#pending.set(id, { replies, expected, done: resolve });
      timer = setTimeout(resolve, this.#timeoutMs);
    });
    try {
      await this.#bus.send({ type: 'survey', id, op });
      await finished;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(id);
    }
    return replies;
  }

  /** onReply records one node's answer to a survey of this node. Late answers are dropped. */
  onReply(id: string, result: unknown): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    p.replies.push(result);
    if (p.replies.length >= p.expected) p.done();
  }
}
