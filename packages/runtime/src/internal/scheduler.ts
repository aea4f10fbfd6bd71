/**
 * Spreads jobs over replicas: each job goes to the least busy replica that has room (at most
 * `maxInFlight` jobs per replica), the rest wait in a FIFO queue. Jobs are independent: one that
 * fails rejects only its own promise. Callers keep their order by awaiting their own promises.
 */
import { ShutdownError } from '../errors.js';

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions {
  /** Most jobs running at once on one replica (one number for all, or one per replica). */
  readonly maxInFlight: number | readonly number[];
}

/** Counters of one replica. */
export interface ReplicaLoad {
  readonly index: number;
  readonly inFlight: number;
  readonly completed: number;
  readonly failed: number;
  /** Milliseconds with at least one job running. */
  readonly busyMs: number;
  /** Set when the replica was taken out of service. */
  readonly disabled: string | undefined;
}

interface Slot {
  readonly max: number;
  inFlight: number;
  dispatched: number;
  completed: number;
  failed: number;
  busyMs: number;
  busySince: number;
  disabled: string | undefined;
}

interface Queued<W> {
  run(worker: W, index: number): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** A least-busy-first job scheduler over a fixed set of workers (replicas). */
export class Scheduler<W> {
  private readonly workers: readonly W[];
  private readonly slots: Slot[];
  private readonly queue: Queued<W>[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private closing = false;

  constructor(workers: readonly W[], options: SchedulerOptions) {
    if (workers.length === 0) throw new RangeError('a scheduler needs at least one worker');
    this.workers = workers;
    this.slots = workers.map((_, i) => {
      const max = typeof options.maxInFlight === 'number' ? options.maxInFlight : options.maxInFlight[i];
      if (max === undefined || !Number.isInteger(max) || max < 1) throw new RangeError(`maxInFlight of replica ${i} must be a positive integer, got ${max}`);
      return { max, inFlight: 0, dispatched: 0, completed: 0, failed: 0, busyMs: 0, busySince: 0, disabled: undefined };
    });
  }

  /** Queues `job`; it runs on the least busy replica as soon as one has room. */
  submit<T>(job: (worker: W, index: number) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new ShutdownError());
    if (this.slots.every((s) => s.disabled !== undefined)) return Promise.reject(this.noReplicaError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: job, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Jobs waiting for a replica. */
  get queued(): number {
    return this.queue.length;
  }

  /** Jobs running on all replicas. */
  get inFlight(): number {
    return this.slots.reduce((a, s) => a + s.inFlight, 0);
  }

  /** Counters of every replica. */
  loads(): ReplicaLoad[] {
    const now = performance.now();
    return this.slots.map((s, index) => ({
      index,
      inFlight: s.inFlight,
      completed: s.completed,
      failed: s.failed,
      busyMs: s.busyMs + (s.inFlight > 0 ? now - s.busySince : 0),
      disabled: s.disabled,
    }));
  }

  /** Takes a replica out of service (e.g. its worker died); queued jobs go to the others. */
  disable(index: number, reason: string): void {
    this.slots[index]!.disabled ??= reason;
    if (this.slots.every((s) => s.disabled !== undefined)) {
      for (const q of this.queue.splice(0)) q.reject(this.noReplicaError());
    }
  }

  /**
   * Stops accepting jobs. Queued jobs fail with a {@link ShutdownError} (or still run with
   * `drain`); jobs already running finish. Resolves when no job runs any more.
   */
  async close(options: { drain?: boolean } = {}): Promise<void> {
    this.closing = true;
    if (!options.drain) for (const q of this.queue.splice(0)) q.reject(new ShutdownError());
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private noReplicaError(): ShutdownError {
    const reasons = [...new Set(this.slots.map((s) => s.disabled))].join('; ');
    return new ShutdownError(`no replica is left to run the request (${reasons})`);
  }

  /** The replica with room and the fewest running jobs (then the fewest dispatched, then the lowest index). */
  private pick(): number {
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.disabled !== undefined || s.inFlight >= s.max) continue;
      const b = this.slots[best]!;
      if (best < 0 || s.inFlight < b.inFlight || (s.inFlight === b.inFlight && s.dispatched < b.dispatched)) best = i;
    }
    return best;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const index = this.pick();
      if (index < 0) return;
      const job = this.queue.shift()!;
      const slot = this.slots[index]!;
      if (slot.inFlight === 0) slot.busySince = performance.now();
      slot.inFlight++;
      slot.dispatched++;
      const settle = (ok: boolean): void => {
        slot.inFlight--;
        if (ok) slot.completed++;
        else slot.failed++;
        if (slot.inFlight === 0) slot.busyMs += performance.now() - slot.busySince;
        this.pump();
        if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      };
      let started: Promise<unknown>;
      try {
        started = job.run(this.workers[index]!, index);
      } catch (e) {
        started = Promise.reject(e);
      }
      started.then(
        (value) => {
          settle(true);
          job.resolve(value);
        },
        (error: unknown) => {
          settle(false);
          job.reject(error);
        },
      );
    }
  }
}
