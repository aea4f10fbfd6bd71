/**
 * Every measurement runs in a child process of its own, so that its peak RSS, its cold start and
 * its caches are its own. A child reports one JSON object on a stdout line starting with
 * {@link RESULT_MARK}; anything else it prints is kept for error messages.
 */
import { spawn } from 'node:child_process';

/** Prefix of the line on which a child reports its result. */
export const RESULT_MARK = '@@bench@@';

/** What a finished child left behind. */
export interface ChildOutput {
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit, ms. */
  readonly wallMs: number;
}

/** Runs `node args…`; rejects with the child's last output lines when it fails or exceeds `timeoutMs`. */
export function runNode(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...args], { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const wallMs = performance.now() - started;
      if (code === 0) return resolve({ stdout, stderr, wallMs });
      const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-12).join('\n');
      reject(new Error(`node ${args.slice(0, 2).join(' ')} … exited with ${signal ?? `code ${code}`}:\n${tail}`));
    });
  });
}

/** The object a child reported with {@link reportResult}. */
export function childResult<T>(out: ChildOutput): T {
  const line = out.stdout.split('\n').reverse().find((l) => l.startsWith(RESULT_MARK));
  if (!line) throw new Error(`the child reported no result:\n${`${out.stdout}\n${out.stderr}`.trim().split('\n').slice(-12).join('\n')}`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as T;
}

/** Reports a child's result to the parent (call once, last). */
export function reportResult(result: unknown): void {
  process.stdout.write(`\n${RESULT_MARK}${JSON.stringify(result)}\n`);
}

/** Peak resident set size of this process so far, MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}
