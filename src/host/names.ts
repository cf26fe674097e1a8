/**
 * Naming for a running node: the model's naming (symbols, reasons) plus
 * what only this machine can say: namespace names from /run/netns (looked
 * up again when a new namespace appears), pods, the owners of receiving
 * sockets' cgroups, and interface names asked from their namespace when no
 * event carried them.
 */
import type { SymbolLookup } from '../model/kallsyms.js';
import { makeNaming, type Naming } from '../model/naming.js';
import type { ReasonTable } from '../model/reasons.js';
import { InterfaceNames } from '../model/interfaces.js';
import { askInterfaces, netnsNames, VethPeers } from './netns.js';
import { cgroupOwners, type CgroupNames } from './cgroups.js';
import { podName, podOfDrop, type PodResolver } from './pods.js';

export function nodeNaming(syms: SymbolLookup | null, reasons: ReasonTable, pods: PodResolver, cgroups: CgroupNames | null = null): Naming {
  const peers = new VethPeers(netnsNames);
  const owner = cgroups ? cgroupOwners(cgroups, pods) : null;
  const naming = makeNaming(syms, reasons, netnsNames(), (ns, ifi) => podName(podOfDrop(pods, peers, ns, ifi)) ?? (pods.isHost(ns) ? '(host)' : null), owner);
  const ifnames = new InterfaceNames(askInterfaces(netnsNames));
  naming.interface = (ns, ifi) => ifnames.name(ns, ifi);
  // namespaces made after the start (a pod, a lab) get their names too: look again on a miss, at most every 2 s
  let names = netnsNames();
  let namesAt = Date.now();
  naming.netns = (ino) => {
    if (!names.has(ino) && Date.now() - namesAt > 2000) {
      names = netnsNames();
      namesAt = Date.now();
    }
    return names.get(ino) ?? null;
  };
  return naming;
}
