/**
 * "Order X changed" inside this process, per database handle. Code that commits a change to an
 * order's status (`applyTrade`, closing an order) announces it after the commit; the live-status
 * feed listens and tells the browsers watching that order, on this instance and, through its own
 * coalesced NOTIFY, on the others.
 *
 * Keyed by the Kysely instance, so two runtimes in one process (tests) never hear each other here:
 * what one applies reaches the other only the way it would between two servers, through PostgreSQL.
 * Announcing never throws and never waits: a listener's failure must not undo a payment (it is
 * reported as a process warning).
 */
export type OrderChangeListener = (orderId: string) => void;

const listeners = new WeakMap<object, Set<OrderChangeListener>>();

/** Tells this process's listeners that the order committed a change. Call after the commit. */
export function announceOrderChange(db: object, orderId: string): void {
  const set = listeners.get(db);
  if (!set) return;
  for (const listener of set) {
    try {
      listener(orderId);
    } catch (error) {
      // The payment is committed and must stay so: a listener's failure is reported, never thrown.
      process.emitWarning(
        `an order-change listener failed for order ${orderId}: ${error instanceof Error ? error.message : String(error)}`,
        { code: 'PAYCENTER_ORDER_CHANGE_LISTENER' },
      );
    }
  }
}

/** Listens to the changes committed through this database handle; returns the unsubscribe. */
export function onOrderChange(db: object, listener: OrderChangeListener): () => void {
  let set = listeners.get(db);
  if (!set) {
    set = new Set();
    listeners.set(db, set);
  }
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}
