#!/usr/bin/env node
/**
 * The long run of the reliability suite: every hostile-input case (with the slow ones), fuzzing
 * with many thousands of inputs per target, the full load test (2,000 requests), the full soak
 * (1,000 predictions after warm-up) and the create/close churn (50 detectors). Prints what it tried
 * and the measured figures as markdown tables (the source of docs/reliability.md), optionally JSON,
 * and exits non-zero if anything failed.
 *
 *   node --expose-gc tools/reliability/build/src/long.js [--only images,fuzz,…] [--fuzz-runs 5000]
 *     [--seed 42] [--load-requests 2000] [--replicas 2] [--callers 4] [--soak-predictions 1000]
 *     [--soak-warmup 200] [--soak-model maskrcnn_tiny] [--churn 50] [--churn-model toy] [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type CaseResult, CaseContext, runCases } from './cases.js';
import { cliCases } from './categories/cli.js';
import { configCases } from './categories/config.js';
import { imageCases } from './categories/images.js';
import { limitsCases } from './categories/limits.js';
import { weightsCases } from './categories/weights.js';
import { apiCases } from './categories/api.js';
import { memoryCases } from './categories/memory.js';
import { outputCases } from './categories/outputs.js';
import { pluginCases } from './categories/plugins.js';
import { streamCases } from './categories/streams.js';
import { tempDir } from './common.js';
import { type FuzzReport, formatOutcomes, runFuzz } from './fuzz/run.js';
import { fuzzTargets } from './fuzz/targets.js';
import { type LoadReport, type ShutdownReport, runLoad, runShutdown } from './load.js';
import { type ChurnReport, type SoakModel, type SoakReport, runChurn, runSoak } from './soak.js';

const PARTS = ['images', 'weights', 'config', 'cli', 'limits', 'streams', 'outputs', 'memory', 'plugins', 'api', 'fuzz', 'load', 'shutdown', 'soak', 'churn'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'fuzz-runs': { type: 'string', default: '5000' },
    seed: { type: 'string', default: '42' },
    'load-requests': { type: 'string', default: '2000' },
    replicas: { type: 'string', default: '2' },
    callers: { type: 'string', default: '4' },
    'soak-predictions': { type: 'string', default: '1000' },
    'soak-warmup': { type: 'string', default: '200' },
    'soak-model': { type: 'string', default: 'maskrcnn_tiny' },
    churn: { type: 'string', default: '50' },
    'churn-model': { type: 'string', default: 'toy' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(`${readHelp()}\n`);
  process.exit(0);
}

function readHelp(): string {
  return [
    'Usage: node --expose-gc tools/reliability/build/src/long.js [options]',
    '',
    `  --only <parts>          comma-separated subset of ${PARTS.join(', ')} (default: all)`,
    '  --fuzz-runs <n>         inputs per fuzz target (default 5000)',
    '  --seed <n>              fast-check seed (default 42)',
    '  --load-requests <n>     requests of the load test (default 2000)',
    '  --replicas <n>          CPU replicas of the load test (default 2)',
    '  --callers <n>           concurrent callers of the load test (default 4)',
    '  --soak-predictions <n>  predictions after warm-up (default 1000)',
    '  --soak-warmup <n>       warm-up predictions (default 200)',
    '  --soak-model <m>        toy | maskrcnn_tiny | keypointrcnn_tiny (default maskrcnn_tiny)',
    '  --churn <n>             detectors created and closed (default 50)',
    '  --churn-model <m>       model of the churn (default toy)',
    '  --json <file>           also write every figure as JSON',
  ].join('\n');
}

const int = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${String(values[name])}`);
  return n;
};
const only = new Set<Part>(values.only ? (values.only.split(',').map((s) => s.trim()) as Part[]) : PARTS);
for (const p of only) if (!PARTS.includes(p)) throw new Error(`--only: unknown part "${p}"; parts: ${PARTS.join(', ')}`);

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const mb = (v: number): string => v.toFixed(1);

interface LongReport {
  cases: CaseResult[];
  fuzz: FuzzReport[];
  load?: LoadReport;
  shutdown?: ShutdownReport;
  soak?: SoakReport;
  churn?: ChurnReport;
  failures: string[];
}

const report: LongReport = { cases: [], fuzz: [], failures: [] };
let unhandled = 0;
process.on('unhandledRejection', (e) => {
  unhandled++;
  report.failures.push(`unhandled rejection: ${e instanceof Error ? e.stack : String(e)}`);
});

const started = performance.now();

// ---- soak and churn first: memory is measured in a fresh process, before the other parts fill it
if (only.has('soak')) {
  const r = await runSoak({ model: values['soak-model'] as SoakModel, predictions: int('soak-predictions'), warmup: int('soak-warmup') });
  report.soak = r;
  say(
    `soak (${r.model}): ${r.predictions} predictions after ${r.warmup} warm-up, ${r.msPerPrediction.toFixed(1)} ms each: RSS ${mb(r.baselineMb)} -> ${mb(r.finalMb)} MB ` +
      `(${r.growthPct >= 0 ? '+' : ''}${r.growthPct.toFixed(2)}%), JS heap ${r.heapGrowthMb >= 0 ? '+' : ''}${r.heapGrowthMb.toFixed(2)} MB; samples ${r.samplesMb.map(mb).join(' ')}`,
  );
  if (!(r.growthPct < 5)) report.failures.push(`soak: RSS grew ${r.growthPct.toFixed(2)}% (limit 5%)`);
}
if (only.has('churn')) {
  const r = await runChurn({ model: values['churn-model'] as SoakModel, cycles: int('churn') });
  report.churn = r;
  say(
    `churn (${r.model}, 2 replicas each): ${r.cycles} detectors created, used and closed after ${r.warmupCycles} warm-up cycles, ${r.msPerCycle.toFixed(0)} ms each: RSS ${mb(r.baselineMb)} -> ${mb(r.finalMb)} MB ` +
      `(${r.growthMb >= 0 ? '+' : ''}${mb(r.growthMb)} MB; one live detector is ${mb(r.detectorMb)} MB = the tolerance); active handles ${r.handlesBefore} -> ${r.handlesAfter}; samples ${r.samplesMb.map(mb).join(' ')}`,
  );
  if (!(r.growthMb < r.toleranceMb)) report.failures.push(`churn: RSS grew ${mb(r.growthMb)} MB (tolerance ${mb(r.toleranceMb)} MB)`);
  if (r.handlesAfter > r.handlesBefore) report.failures.push(`churn: active handles ${r.handlesBefore} -> ${r.handlesAfter}`);
}

// ---- hostile-input cases
const caseParts = (['images', 'weights', 'config', 'cli', 'limits', 'streams', 'outputs', 'memory', 'plugins', 'api'] as const).filter((p) => only.has(p));
if (caseParts.length > 0) {
  const ctx = new CaseContext({ full: true });
  try {
    const lists = {
      images: () => imageCases({ full: true }),
      weights: weightsCases,
      config: configCases,
      cli: cliCases,
      limits: limitsCases,
      // round 2 (issue 18): outputs = full-disk, aliasing, outputs; memory = config-memory, bombs (the 2^28-float bomb)
      streams: streamCases,
      outputs: outputCases,
      memory: () => memoryCases({ full: true }),
      plugins: pluginCases,
      api: apiCases,
    };
    for (const part of caseParts) {
      const results = await runCases(lists[part](), ctx);
      report.cases.push(...results);
      const failed = results.filter((r) => !r.ok);
      say(`${part}: ${results.length - failed.length}/${results.length} cases pass (${(results.reduce((a, r) => a + r.ms, 0) / 1000).toFixed(1)} s)`);
      for (const f of failed) {
        say(`  FAIL ${f.name}: ${f.error}`);
        report.failures.push(`${part}: ${f.name}`);
      }
    }
  } finally {
    await ctx.close();
  }
}

// ---- fuzzing
if (only.has('fuzz')) {
  const dir = tempDir();
  try {
    for (const target of await fuzzTargets(dir.path)) {
      const r = await runFuzz(target, { runs: int('fuzz-runs'), seed: int('seed') }).finally(() => target.close?.());
      report.fuzz.push(r);
      say(`fuzz ${r.target}: ${r.runs} inputs in ${(r.ms / 1000).toFixed(1)} s: ${formatOutcomes(r.outcomes)}${r.bug ? '' : ', no bug'}`);
      if (r.bug) {
        say(`  BUG ${r.bug.error}\n  input: ${r.bug.input}\n  replay: seed ${r.seed}, path ${r.bug.path}`);
        report.failures.push(`fuzz ${r.target}: ${r.bug.error.split('\n')[0]}`);
      }
    }
  } finally {
    dir.remove();
  }
}

// ---- load and shutdown
if (only.has('load')) {
  try {
    const r = await runLoad({ requests: int('load-requests'), replicas: int('replicas'), callers: int('callers') });
    report.load = r;
    say(
      `load: ${r.requests} requests, ${r.replicas} replicas, ${r.callers} callers: ${r.ok} results (all equal to a sequential run: ${r.matchedReference}), ` +
        `${r.corrupt} corrupt and ${r.poisoned} post-processing failures each with its own error; per replica ${r.perReplica.join(' / ')}; ` +
        `${(r.wallMs / 1000).toFixed(1)} s, ${r.imagesPerSecond.toFixed(0)} images/s, latency p50 ${r.latencyP50Ms.toFixed(1)} ms p95 ${r.latencyP95Ms.toFixed(1)} ms; unhandled rejections ${r.unhandledRejections}`,
    );
    if (r.unhandledRejections > 0) report.failures.push('load: unhandled rejections');
  } catch (e) {
    say(`load: FAIL ${(e as Error).message}`);
    report.failures.push(`load: ${(e as Error).message}`);
  }
}
if (only.has('shutdown')) {
  try {
    const r = await runShutdown({ requests: 400, closeAfter: 40, replicas: int('replicas') });
    report.shutdown = r;
    say(`shutdown: close() after 40 of ${r.requests} outcomes: ${r.finished} finished, ${r.shutDown} ShutdownError, close took ${r.closeMs.toFixed(0)} ms`);
  } catch (e) {
    say(`shutdown: FAIL ${(e as Error).message}`);
    report.failures.push(`shutdown: ${(e as Error).message}`);
  }
}

// ---- summary table
say();
say('| category | tried | passing |');
say('| --- | --- | --- |');
// Rows by case category (a part such as `outputs` holds several: full-disk, aliasing, outputs).
for (const category of [...new Set(report.cases.map((c) => c.category))]) {
  const rs = report.cases.filter((c) => c.category === category);
  say(`| ${category} | ${rs.length} cases | ${rs.filter((r) => r.ok).length} |`);
}
for (const f of report.fuzz) say(`| fuzz: ${f.target} | ${f.runs} inputs (seed ${f.seed}) | ${f.bug ? 'BUG' : 'no bug'}: ${formatOutcomes(f.outcomes)} |`);
say();
say(`total ${((performance.now() - started) / 1000).toFixed(0)} s; unhandled rejections ${unhandled}; ${report.failures.length === 0 ? 'ALL PASS' : `${report.failures.length} FAILURE(S):\n  ${report.failures.join('\n  ')}`}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
