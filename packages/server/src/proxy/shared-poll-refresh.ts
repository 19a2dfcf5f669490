/**
 * The shared poll refresh proxy's exchange (Centrifugo v6.8): Bulwark POSTs
 * `{"channel", "items": [{"key"} | {"key", "version"}]}` (versions in `versioned` mode only)
 * and the backend answers `{"result": {"items": [{key, data?, version?, removed?}], "epoch"?}}`
 * or `{"error": …}`. Items left out of the answer are unchanged. The answer is external input:
 * validated here, a bad one is a failed call like a timeout (the cycle keeps the last data).
 *
 * @module
 */
import { z } from 'zod';

/** RefreshItemRequest is one item asked for: its key, and the version held (versioned mode). */
export interface RefreshItemRequest {
  key: string;
  version?: number;
}

/** RefreshedItem is one item as the backend answered it (data still parsed JSON). */
export interface RefreshedItem {
  key: string;
  /** The item's value; undefined when the backend left it out (versioned mode: unchanged). */
  data: unknown;
  /** The backend's version (versioned mode; optional in versionless mode). */
  version: number | undefined;
  removed: boolean;
}

/** RefreshOutcome is a successful refresh call. */
export interface SharedPollRefreshOutcome {
  items: RefreshedItem[];
  /** The publisher's epoch (versioned mode); '' when the backend sends none. */
  epoch: string;
}

const item = z.looseObject({
  key: z.string().min(1),
  data: z.unknown().optional(),
  version: z.number().int().min(0).nullish(),
  removed: z.boolean().nullish(),
  b64data: z
    .unknown()
    .optional()
    .refine((v) => v === undefined || v === null, 'b64data is not supported: send JSON in data'),
});

/** sharedPollRefreshResultSchema is the refresh proxy's `result`. */
export const sharedPollRefreshResultSchema = z.looseObject({
  items: z.array(item).nullish(),
  epoch: z.string().nullish(),
});

/** refreshOutcome turns a validated result into Bulwark's shape. */
export function refreshOutcome(
  r: z.output<typeof sharedPollRefreshResultSchema> | undefined,
): SharedPollRefreshOutcome {
  const items = (r?.items ?? []).map((i) => ({
    key: i.key,
    data: i.data === null ? undefined : i.data,
    version: i.version ?? undefined,
    removed: i.removed === true,
  }));
  return { items, epoch: r?.epoch ?? '' };
}
