/**
 * `bulwark plan`: turns a launch forecast into machines, processes, memory and Redis shards
 * with the capacity model (capacity/model.ts), printing the assumptions and the measured costs
 * behind every figure. Each forecast key is a flag (`peak_ccu` → `--peak-ccu`), or comes from a
 * JSON file (`--forecast`); flags win. Exit code 0: a plan; 1: the forecast cannot run as asked
 * (the plan says why); 2: a bad forecast or coefficients file.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { measuredCoefficients, withOverrides, type Coefficients } from '../capacity/coefficients.js';
import { forecastSchema, parseForecast } from '../capacity/forecast.js';
import { plan } from '../capacity/model.js';
import { renderPlan } from '../capacity/render.js';
import { BulwarkError } from '../errors.js';

/** planFlag is the flag of a forecast key: `peak_ccu` → `peak-ccu`. */
export function planFlag(key: string): string {
  return key.replaceAll('_', '-');
}

/** registerPlan adds the `plan` command to `program`. */
export function registerPlan(program: Command): void {
  const cmd = program
    .command('plan')
    .description('turn a launch forecast into machines, processes, memory and Redis shards (docs/CAPACITY.md)')
    .option('-f, --forecast <file>', 'JSON file with forecast keys (peak_ccu, audience, …); flags override it')
    .option(
      '--coefficients <file>',
      'JSON file of measured costs replacing the built-in ones, e.g. {"cpuPerConnectUs": 150}',
    )
    .option('--json', 'print the plan as one line of JSON');
  for (const key of Object.keys(forecastSchema.shape)) {
    cmd.option(`--${planFlag(key)} <value>`, `forecast key ${key}`);
  }
  cmd.action((opts: Record<string, unknown>) => {
    try {
      const input: Record<string, unknown> = opts['forecast'] ? readJson(String(opts['forecast']), '--forecast') : {};
      for (const key of Object.keys(forecastSchema.shape)) {
        const flag = camel(planFlag(key));
        if (opts[flag] !== undefined) input[key] = flagValue(key, String(opts[flag]));
      }
      const forecast = parseForecast(input);
      const coefficients: Coefficients = opts['coefficients']
        ? withCoefficientFile(String(opts['coefficients']))
        : measuredCoefficients;
      const result = plan(forecast, coefficients);
      process.stdout.write(
        opts['json'] ? `${JSON.stringify({ ...result, coefficients })}\n` : `${renderPlan(result, coefficients)}\n`,
      );
      process.exitCode = result.problems.length > 0 ? 1 : 0;
    } catch (err) {
      const code = err instanceof BulwarkError ? err.code : 'BW_ERR_PLAN_INPUT';
      process.stderr.write(`bulwark plan: ${code}: ${(err as Error).message}\n`);
      process.exitCode = 2;
    }
  });
}

/** flagValue reads a flag's text as the forecast key wants it (numbers, engine name, true/false). */
function flagValue(key: string, text: string): unknown {
  if (key === 'engine') return text;
  if (key === 'history') {
    if (text === 'true' || text === 'false') return text === 'true';
    throw new BulwarkError('BW_ERR_PLAN_INPUT', `--history must be true or false, got "${text}"`);
  }
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) {
    throw new BulwarkError('BW_ERR_PLAN_INPUT', `--${planFlag(key)} must be a number, got "${text}"`);
  }
  return n;
}

function withCoefficientFile(file: string): Coefficients {
  try {
    return withOverrides(measuredCoefficients, readJson(file, '--coefficients'));
  } catch (err) {
    if (err instanceof BulwarkError) throw err;
    throw new BulwarkError('BW_ERR_PLAN_INPUT', `--coefficients ${file}: ${(err as Error).message}`);
  }
}

function readJson(file: string, flag: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BulwarkError('BW_ERR_PLAN_INPUT', `${flag} ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BulwarkError('BW_ERR_PLAN_INPUT', `${flag} ${file}: must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());
}
