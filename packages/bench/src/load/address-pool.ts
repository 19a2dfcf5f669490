/**
 * A stand-in for the load balancer in front of several Bulwark nodes: the set of addresses it
 * currently routes new connections to, handed out round-robin. A rolling restart changes the
 * set the way a load balancer does after its readiness probes: a draining node leaves it (some
 * time after its `/ready` turned 503, the probe delay), a fresh node joins once ready.
 * Connections already open are not affected, as with a real load balancer.
 *
 * @module
 */

/** AddressPool is the set of WebSocket URLs new connections go to. */
export class AddressPool {
  private members: string[] = [];
  private next = 0;

  constructor(urls: readonly string[] = []) {
    for (const u of urls) this.add(u);
  }

  /** add puts `url` into rotation (no-op when already there). */
  add(url: string): void {
    if (!this.members.includes(url)) this.members.push(url);
  }

  /** remove takes `url` out of rotation. */
  remove(url: string): void {
    this.members = this.members.filter((u) => u !== url);
  }

  /** urls is the current rotation. */
  get urls(): readonly string[] {
    return this.members;
  }

  /** pick returns the next address in rotation, or undefined when the pool is empty. */
  pick(): string | undefined {
    if (this.members.length === 0) return undefined;
    const url = this.members[this.next % this.members.length] as string;
    this.next = (this.next + 1) % this.members.length;
    return url;
  }
}
