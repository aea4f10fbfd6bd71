/** Terminal output: where things go and how progress is shown. */
import { StdoutClosedError } from './errors.js';

/** Streams of a command (replaceable in tests). */
export interface CliIO {
  readonly stdout: NodeJS.WriteStream | NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream | NodeJS.WritableStream;
}

/** Streams whose reader went away (EPIPE): writing more is pointless, the command stops. */
const CLOSED = new WeakSet<object>();

/** Records that `stream`'s reader is gone (its 'error' event said EPIPE). */
export function markClosed(stream: object): void {
  CLOSED.add(stream);
}

/** Writes to stdout; throws {@link StdoutClosedError} once its reader has gone (`rcnn … | head -1`). */
export function writeOut(io: CliIO, text: string): void {
  if (CLOSED.has(io.stdout)) throw new StdoutClosedError();
  io.stdout.write(text);
}

/**
 * Waits until everything written to stdout has reached the OS. A large write to a pipe finishes
 * after the command returns, so its EPIPE arrives late: this is where a command learns of it.
 * Resolves false when the reader went away.
 */
export function flushStdout(io: CliIO): Promise<boolean> {
  if (CLOSED.has(io.stdout)) return Promise.resolve(false);
  const stream = io.stdout as NodeJS.WritableStream & { destroyed?: boolean };
  if (stream.destroyed === true) return Promise.resolve(false);
  return new Promise((resolve) => {
    stream.write('', (e?: Error | null) => {
      if ((e as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE') markClosed(io.stdout);
      resolve(!e && !CLOSED.has(io.stdout));
    });
  });
}

/** Prints to stdout. */
export function say(io: CliIO, line = ''): void {
  writeOut(io, `${line}\n`);
}

/** Prints to stderr. */
export function warn(io: CliIO, line: string): void {
  io.stderr.write(`${line}\n`);
}

/** True when `stream` is an interactive terminal. */
export function isTty(stream: CliIO['stdout']): boolean {
  return (stream as NodeJS.WriteStream).isTTY === true;
}

/** A one-line progress bar, drawn only on a terminal. */
export class ProgressBar {
  private readonly io: CliIO;
  private readonly total: number;
  private readonly label: string;
  private readonly enabled: boolean;
  private done = 0;

  constructor(io: CliIO, total: number, label: string, enabled = isTty(io.stdout)) {
    this.io = io;
    this.total = total;
    this.label = label;
    this.enabled = enabled && total > 0;
  }

  /** Advances by one and redraws; `note` is shown after the counter. */
  tick(note = ''): void {
    this.done++;
    if (!this.enabled) return;
    const width = 28;
    const filled = Math.round((this.done / this.total) * width);
    this.io.stdout.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${note}`.padEnd(90));
    if (this.done === this.total) this.io.stdout.write('\n');
  }

  /** Clears the bar (before printing other lines). */
  clear(): void {
    if (this.enabled && this.done < this.total) this.io.stdout.write(`\r${' '.repeat(90)}\r`);
  }
}
