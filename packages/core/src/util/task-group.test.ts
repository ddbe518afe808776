import { describe, expect, it } from 'vitest';
import { TaskGroup } from './task-group.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TaskGroup', () => {
  it('limits concurrency', async () => {
    const g = new TaskGroup(2);
    let running = 0;
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      void g.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
      });
    }
    await g.all();
    expect(peak).toBe(2);
  });

  it('skips tasks not yet started after a failure and rethrows the first error', async () => {
    const g = new TaskGroup(1);
    const ran: number[] = [];
    const boom = new Error('boom');
    void g.run(async () => {
      ran.push(0);
      throw boom;
    });
    for (let i = 1; i < 5; i++) void g.run(async () => void ran.push(i));
    await expect(g.all()).rejects.toBe(boom);
    expect(ran).toEqual([0]);
  });

  it('settle waits for tasks queued by running tasks and never rejects', async () => {
    const g = new TaskGroup(2);
    const order: string[] = [];
    void g.run(async () => {
      await sleep(5);
      void g.run(async () => {
        await sleep(5);
        order.push('child');
      });
      order.push('parent');
    });
    await g.settle();
    expect(order).toEqual(['parent', 'child']);
  });

  it('next resolves when a task settles, and at once when none is running', async () => {
    const g = new TaskGroup(1);
    await g.next();
    let finished = false;
    void g.run(async () => {
      await sleep(10);
      finished = true;
    });
    await g.next();
    expect(finished).toBe(true);
  });
});
