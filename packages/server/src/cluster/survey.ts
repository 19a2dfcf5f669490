/**
 * Surveys: ask every other node a question through the control channel and gather the
 * answers, for API methods whose answer spans the cluster (`channels`). The caller says how
 * many answers to expect (the live nodes it knows); the survey ends when they are all in or
 * at the timeout, whichever comes first — a node that died mid-survey delays the answer, it
 * never blocks it. It also answers the other nodes' surveys, with what this node knows.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ControlBus } from './control.js';

/** SurveyOp is a question nodes know how to answer. */
export type SurveyOp = 'channels';

interface Pending {
  replies: unknown[];
  expected: number;
  done: () => void;
}

/** SurveyAnswers is what this node answers to the other nodes' surveys (one method per op). */
export interface SurveyAnswers {
  /** This node's channels with their subscriber counts. */
  channels(): Record<string, number>;
  readonly log: Logger;
}

/** Surveys runs the surveys of one node, and answers the other nodes'. */
export class Surveys {
  readonly #bus: Pick<ControlBus, 'send'>;
  readonly #timeoutMs: number;
  readonly #answers: SurveyAnswers;
  readonly #pending = new Map<string, Pending>();

  constructor(bus: Pick<ControlBus, 'send'>, timeoutMs: number, answers: SurveyAnswers) {
    this.#bus = bus;
    this.#timeoutMs = timeoutMs;
    this.#answers = answers;
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

  /** answer replies to another node's survey. */
  answer(from: string, id: string, op: SurveyOp): void {
    this.#bus
      .send({ type: 'survey_reply', to: from, id, result: this.#answers[op]() })
      .catch((err: unknown) => this.#answers.log.warn({ err }, 'survey reply not sent'));
  }

  /** onReply records one node's answer to a survey of this node. Late answers are dropped. */
  onReply(id: string, result: unknown): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    p.replies.push(result);
    if (p.replies.length >= p.expected) p.done();
  }
}
