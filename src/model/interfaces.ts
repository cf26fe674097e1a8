/**
 * Interface names by namespace and ifindex: the one cache every consumer keeps. Names come free
 * with events and recordings (learn); a name nobody carried is asked from its namespace once,
 * through the asker the host layer gives (host/netns.ts askInterfaces), and again on a miss.
 */

/** Namespaces a name cache remembers before it starts over (pods come and go for weeks). */
export const MAX_NAMESPACES = 4096;

export class InterfaceNames {
  private readonly byNetns = new Map<number, Map<number, string>>();

  /** ask: every interface of a namespace, ifindex → name, or null where it cannot be asked */
  constructor(private readonly ask: (netns: number) => Map<number, string> | null = () => null) {}

  /** Learned from an event or a recording: nothing asked. */
  learn(netns: number, ifindex: number, name: string): void {
    let m = this.byNetns.get(netns);
    if (!m) {
      if (this.byNetns.size >= MAX_NAMESPACES) this.byNetns.clear();
      this.byNetns.set(netns, (m = new Map()));
    }
    m.set(ifindex, name);
  }

  /** The name if known, without asking the namespace. */
  known(netns: number, ifindex: number): string | null {
    return this.byNetns.get(netns)?.get(ifindex) ?? null;
  }

  /** Namespaces that are gone need no names. */
  forget(netns: number): void {
    this.byNetns.delete(netns);
  }

  /** The name, asking the namespace when it is not known (the answer replaces what it knew of it). */
  name(netns: number, ifindex: number): string | null {
    if (!ifindex) return null;
    let m = this.byNetns.get(netns);
    if (!m?.has(ifindex)) {
      if (!m && this.byNetns.size >= MAX_NAMESPACES) this.byNetns.clear();
      m = this.ask(netns) ?? m ?? new Map<number, string>();
      this.byNetns.set(netns, m);
    }
    return m.get(ifindex) ?? null;
  }
}
