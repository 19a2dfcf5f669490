/**
 * Config validation problems in plain words. zod's messages are written for developers
 * ("Invalid input: expected number, received string"); an operator reading a failed start
 * wants to know which key is wrong and what it should be ("must be a number, got a string").
 *
 * @module
 */
import type { z } from 'zod';

/** plainIssue rewrites one zod issue's message; messages Bulwark wrote itself pass unchanged. */
export function plainIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const got = /received (\w+)/.exec(issue.message)?.[1];
      const expected = issue.expected === 'object' ? 'an object ({…})' : withArticle(issue.expected);
      return got === undefined ? `must be ${expected}` : `must be ${expected}, got ${withArticle(got)}`;
    }
    case 'too_small':
      return issue.origin === 'string' || issue.origin === 'array'
        ? `must have at least ${String(issue.minimum)} ${issue.origin === 'string' ? 'characters' : 'entries'}`
        : `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'string' || issue.origin === 'array'
        ? `must have at most ${String(issue.maximum)} ${issue.origin === 'string' ? 'characters' : 'entries'}`
        : `must be at most ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? issue.message : `must be a valid ${issue.format}`;
    default:
      return issue.message;
  }
}

function withArticle(type: string): string {
  if (type === 'undefined' || type === 'null') return type;
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/**
 * jsonErrorPlace turns JSON.parse's "at position N" into a line and column of `text`, which
 * is what an editor shows; undefined when the message has no position.
 */
export function jsonErrorPlace(text: string, message: string): string | undefined {
  const m = /position (\d+)/.exec(message);
  if (m === null) return undefined;
  const pos = Math.min(Number(m[1]), text.length);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}
