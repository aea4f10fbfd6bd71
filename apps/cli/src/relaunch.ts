/**
 * `rcnn train` runs with the C allocator settings of training processes
 * (`trainingAllocatorEnvironment` of @rcnn/runtime/training: two glibc malloc arenas, so the
 * training's onnxruntime sessions, each in its own worker thread, reuse each other's freed memory).
 * They must be in the environment when the process starts, so the command relaunches this same
 * Node and script once with them: stdio inherited, the exit status and a terminating signal passed
 * on. The child runs in a process group of its own, so a Ctrl-C (or a signal sent to this process)
 * reaches it exactly once, passed on by the parent: the first stops the training after a
 * checkpoint, the second quits, as in a single process.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { trainingAllocatorEnvironment } from '@rcnn/runtime/training';

/** Commands that relaunch with the training allocator settings. */
const RELAUNCHED_COMMANDS: ReadonlySet<string> = new Set(['train']);

/**
 * When `argv` (without node and the script) runs a training command and the environment lacks the
 * allocator settings, runs it in a relaunched child and resolves with the child's exit status;
 * otherwise resolves undefined (run in this process).
 */
export async function relaunchForTraining(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if (argv[0] === undefined || !RELAUNCHED_COMMANDS.has(argv[0]) || argv.includes('--help') || argv.includes('-h')) return undefined;
  const childEnv = trainingAllocatorEnvironment(env);
  const script = process.argv[1];
  if (!childEnv || script === undefined) return undefined;
  // The parent keeps a debugger's port; the child would fail to open it again.
  const nodeFlags = process.execArgv.filter((a) => !a.startsWith('--inspect') && !a.startsWith('--debug'));
  const child = spawn(process.execPath, [...nodeFlags, script, ...argv], { env: childEnv, stdio: 'inherit', detached: true });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal ? signalStatus(signal) : 1)));
    });
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}

/** The shell's status of a process killed by `signal`: 128 + its number. */
function signalStatus(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 1);
}
