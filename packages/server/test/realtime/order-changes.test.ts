import { afterEach, describe, expect, it, vi } from 'vitest';
import { announceOrderChange, onOrderChange } from '../../src/realtime/order-changes.js';

describe('order changes inside one process', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('tells every listener of that database handle, and nobody else', () => {
    const db = {};
    const other = {};
    const heard: string[] = [];
    const stop = onOrderChange(db, (id) => heard.push(`a${id}`));
    onOrderChange(db, (id) => heard.push(`b${id}`));
    onOrderChange(other, (id) => heard.push(`other${id}`));
    announceOrderChange(db, '7');
    stop();
    announceOrderChange(db, '8');
    expect(heard).toEqual(['a7', 'b7', 'b8']);
  });

  it('reports a failing listener as a warning, never throws, and still tells the others', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const db = {};
    const heard: string[] = [];
    onOrderChange(db, () => {
      throw new Error('feed is gone');
    });
    onOrderChange(db, (id) => heard.push(id));
    expect(() => announceOrderChange(db, '9')).not.toThrow();
    expect(heard).toEqual(['9']);
    expect(warn).toHaveBeenCalledWith('an order-change listener failed for order 9: feed is gone', {
      code: 'PAYCENTER_ORDER_CHANGE_LISTENER',
    });
  });
});
