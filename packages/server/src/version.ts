/**
 * The Bulwark version, reported in connect replies, `info` and logs; kept equal to package.json's.
 *
 * @module
 */

/** version is the Bulwark version. */
export const version = '0.1.0';
