/** version is the Bulwark version reported in connect replies, `info` and logs. */
export const version = '0.1.0';
