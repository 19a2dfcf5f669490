/**
 * Preloaded (`node --import`) into every Bulwark the bench starts: the bench holds the child's
 * stdin pipe open, so when the bench dies — even by SIGKILL, when no handler of its own runs —
 * the pipe closes and the server exits instead of lingering and skewing the next run. The
 * reference servers do the same with their own --watch-stdin; Bulwark's CLI has no such flag
 * and needs none in production.
 *
 * @module
 */
const exit = (): never => process.exit(0);
process.stdin.on('end', exit).on('close', exit).resume();
