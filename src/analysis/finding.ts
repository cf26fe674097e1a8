/**
 * What diagnose says of a group of drops: a finding, its evidence and its impact. The
 * shapes only; building, judging and ranking them live in diagnose.ts, evidence.ts and
 * gather.ts.
 */
import type { DropContext, Hint } from '../model/hints.js';
import type { FlowFields } from './snapshot.js';

export interface Evidence {
  /** confirms the finding, refutes it, or is context */
  verdict: 'confirms' | 'refutes' | 'info';
  text: string;
  /** a confirmation that names the cause: becomes the finding's headline */
  cause?: string;
  /** the command that shows that cause, put first under "next" */
  next?: string;
  /**
   * counters this evidence showed counting the finding's own drops ("xfrm_stat:XfrmInPolBlock",
   * "ethtool:eth0:rx_queue_0_xdp_drops"): not a finding of their own as well
   */
  counts?: string[];
}

/**
 * Where in the machine the packets died: the kernel's network stack (a traced drop, or a stack
 * counter), a device's driver (its own counters: rx_missed, ethtool -S), or the device's
 * hardware, which reported them through a devlink trap.
 */
export const LAYERS = ['kernel stack', 'driver', 'hardware trap'] as const;
export type Layer = (typeof LAYERS)[number];

export interface Finding {
  rank: number;
  layer: Layer;
  location: string;
  function: string | null;
  reason: string | null;
  count: number;
  share: number;
  rate: number;
  avgLen: number;
  interfaces: string[];
  netns: { inode: number; label: string };
  flows: Array<{ flow: string; count: number }>;
  /** the receiving sockets that refused the packets, with their owners (kernel 6.11+) */
  sockets: Array<{ socket: string; count: number }>;
  /** the fields of the top flow, for rules that hold a flow against a firewall or a route */
  flow: FlowFields | null;
  context: DropContext;
  hint: Hint | null;
  evidence: Evidence[];
  /** TCP connection attempts (SYN) among the drops seen as events */
  syn: number;
  /** drops seen as events with a unicast destination, and the largest such flow */
  unicast: number;
  topUnicast: { key: string; count: number } | null;
  /** the benign rule (src/model/benign.ts) all of its drops matched, or null */
  benign: { rule: string; title: string } | null;
  /** the same site at rest (--baseline), when one was given */
  baseline: { rate: number } | null;
  /** why it ranks where it does */
  impact: Impact;
  /**
   * the cause the evidence established (conntrack full, a rule that counted them, a listener
   * bound elsewhere, strict rp_filter): the finding's headline, in place of the reason's
   * generic meaning; null when nothing confirmed one
   */
  cause: string | null;
  /** a device's trap (devlink) that counted these, or null */
  trap?: { device: string; trap: string; group: string; type: 'drop' | 'exception' };
  /** a drop only a counter saw (never freed through kfree_skb with a reason), or null for traced drops */
  counter: { key: string; delta: number; impact: 'failing-connections' | 'unicast' | 'other' } | null;
  /** with --stack, for a generic free function: who it freed for, by drops */
  callers?: Array<{ function: string; count: number }>;
  /** with --stack, for a site no table explains: the frames that called it, from its top stack */
  calledFrom?: string[];
  /** --path: the most frequent paths its dropped packets took (hops as report --paths gives them) */
  paths?: Array<{ hops: string[]; count: number; medianNs: number }>;
}

/**
 * How much a finding matters to someone whose connection fails, strongest
 * first. Counts rank only within a class: 40 MLD reports must not outrank 3
 * SYNs dropped by a rule.
 */
export const IMPACT_CLASSES = ['confirmed', 'failing-connections', 'unicast', 'other', 'at-baseline', 'benign'] as const;
export type ImpactClass = (typeof IMPACT_CLASSES)[number];
export interface Impact {
  class: ImpactClass;
  why: string;
}


/** What a finding is before anything was seen of its packets: the start of the findings no traced event built. */
export function untracedFinding(f: Pick<Finding, 'layer' | 'location' | 'count' | 'rate' | 'interfaces' | 'netns' | 'context' | 'hint' | 'evidence' | 'impact' | 'cause'> & Partial<Finding>): Finding {
  return {
    rank: 0,
    function: null,
    reason: null,
    share: 0,
    avgLen: 0,
    flows: [],
    sockets: [],
    flow: null,
    syn: 0,
    unicast: 0,
    topUnicast: null,
    benign: null,
    baseline: null,
    counter: null,
    ...f,
  };
}
