/**
 * The memory map broker against the MapBroker conformance suite, with a manual clock (time
 * moves and expired keys are swept only when the suite says) and on the real clock with a
 * running sweep timer (the path engines without an injectable clock use).
 */
import { MemoryMapBroker } from '../src/engine/map-broker-memory.js';
import { runMapBrokerSuite } from './conformance/map.case.js';

runMapBrokerSuite('MemoryMapBroker conformance', async () => {
  let t = 1_000_000;
  const map = new MemoryMapBroker({ now: () => t, sweepIntervalMs: 0 });
  const advance = (ms: number): void => {
    t += ms;
    map.sweep();
  };
  return { map, advance, cleanup: () => map.close() };
});

runMapBrokerSuite('MemoryMapBroker conformance (real clock)', async () => {
  const map = new MemoryMapBroker({ sweepIntervalMs: 10 });
  return { map, cleanup: () => map.close() };
});
