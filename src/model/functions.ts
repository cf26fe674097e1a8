/** What droptrace knows about kernel function names, once: their compiler copies and the generic free functions. Pure. */

/**
 * The function a symbol is a compiler copy of: `ip_rcv_finish_core.isra.0`, `.constprop.0`,
 * `.part.0`, `.cold`, `.lto_priv.0` and `.llvm.NNN` all name the function before the first dot
 * (kernel C identifiers have none).
 */
export function baseFunction(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/**
 * Functions that free a packet on someone else's behalf: a drop "at" one of them says little,
 * the caller its stack names says where (diagnose's "freed for", symbolize's callers).
 */
export const GENERIC_FREE: ReadonlySet<string> = new Set([
  'kfree_skb', 'kfree_skb_reason', 'sk_skb_reason_drop', '__kfree_skb', '__kfree_skb_reason', 'kfree_skb_list', 'kfree_skb_list_reason',
  'kfree_skb_partial', 'kfree_skbmem', 'skb_release_data', 'skb_release_all', 'skb_release_head_state', 'skb_free_head',
  'consume_skb', '__consume_stateless_skb', 'napi_consume_skb', '__dev_kfree_skb_any', 'dev_kfree_skb_any_reason', '__dev_kfree_skb_irq',
  'dev_kfree_skb_irq_reason', 'skb_queue_purge', 'skb_queue_purge_reason', '__skb_queue_purge', '__skb_queue_purge_reason',
]);

/** Whether a symbol (compiler copies included) is a generic free function. */
export function isGenericFree(name: string): boolean {
  return GENERIC_FREE.has(baseFunction(name));
}
