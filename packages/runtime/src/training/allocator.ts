/**
 * The C allocator settings a training process runs with. glibc's malloc gives threads their own
 * arenas (up to 8 per core), and onnxruntime's sessions run in worker threads: what one session's
 * thread frees (the parsed model at session creation, a proposal pass's temporaries) stays in that
 * thread's arena while the other session's thread grows its own, so the process holds both. Two
 * arenas let the sessions reuse each other's freed memory: a frozen-body Mask R-CNN R50-FPN step's
 * peak RSS drops from 1452 to 1277 MB (2 CPU threads; one arena: 1189 MB), at no measured cost in
 * step time (docs/performance.md, M6). The setting must be in the environment before the process
 * starts, so `rcnn train` relaunches itself with it ({@link trainingAllocatorEnvironment}).
 */

/** glibc's `MALLOC_ARENA_MAX` for training processes. */
export const TRAINING_MALLOC_ARENA_MAX = '2';

/** Set (to anything) to keep the C allocator as the environment has it. */
export const KEEP_ALLOCATOR_ENV = 'RCNN_KEEP_ALLOCATOR';

/**
 * The environment a training process should run with, or undefined when `env` already is it:
 * `MALLOC_ARENA_MAX` already set (the user's choice wins), {@link KEEP_ALLOCATOR_ENV} set, or not
 * glibc (`glibc`; default: this process's runtime — the variable means nothing elsewhere).
 */
export function trainingAllocatorEnvironment(env: NodeJS.ProcessEnv, glibc?: boolean): NodeJS.ProcessEnv | undefined {
  // The environment first: the relaunched child (and a user's own setting) never builds the report.
  if (env.MALLOC_ARENA_MAX !== undefined || env[KEEP_ALLOCATOR_ENV] !== undefined || !(glibc ?? runsOnGlibc())) return undefined;
  return { ...env, MALLOC_ARENA_MAX: TRAINING_MALLOC_ARENA_MAX };
}

/** Whether this process runs on glibc (Node's diagnostic report names its version). */
export function runsOnGlibc(): boolean {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return typeof header?.glibcVersionRuntime === 'string';
}
