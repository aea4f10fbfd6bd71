/**
 * The baseline ("peer"): torchvision's own ONNX export of the same model, timed by the shared
 * `time_peer.cjs` exactly as its README says (onnxruntime-node CPU, `--threads` intra-op threads,
 * inter-op 1, sequential, graph optimisation `all`, one CHW float image = png / 255). Each call is
 * one process; `peer-preload.js` adds its peak RSS and exit time.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { childResult, runNode } from './child.js';

/** The peer tool vendored in this repository (tools/peer/time_peer.cjs). */
export const DEFAULT_PEER_TOOL = fileURLToPath(new URL('../../../peer/time_peer.cjs', import.meta.url));

/** How to run the peer. */
export interface PeerSetup {
  /** Path of time_peer.cjs. */
  readonly tool: string;
  /** node_modules folder (or package folder) holding the onnxruntime-node the peer uses. */
  readonly ortNodeDir: string;
}

/** One peer process: time_peer.cjs's JSON plus the preload's numbers. */
export interface PeerSteady {
  readonly createMs: number;
  readonly firstMs: number;
  readonly runsMs: readonly number[];
  readonly detections: number;
  readonly peakRssMb: number;
  /** Process start → first result: the exit time minus the timed runs after the first (time_peer.cjs does nothing else after them). */
  readonly firstResultAtMs: number;
  /** time_peer.cjs `--check` verdict against the case reference, when asked for. */
  readonly check?: { readonly pass: boolean } & Readonly<Record<string, unknown>>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The onnxruntime-node this repository uses (its node_modules folder), for the peer too. */
export function defaultOrtNodeDir(): string {
  let dir = here;
  for (;;) {
    if (existsSync(join(dir, 'node_modules', 'onnxruntime-node', 'package.json'))) return join(dir, 'node_modules');
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('onnxruntime-node not found above the bench tool; pass --ort-node-dir');
    dir = up;
  }
}

/** Runs time_peer.cjs once on `caseDir`. */
export async function timePeer(setup: PeerSetup, caseDir: string, o: { runs: number; threads: number; check?: boolean }): Promise<PeerSteady> {
  if (!existsSync(setup.tool)) throw new Error(`peer tool ${setup.tool} not found (pass --peer-tool, or --no-peer to skip the baseline)`);
  const preload = pathToFileURL(join(here, 'peer-preload.js')).href;
  const args = ['--import', preload, setup.tool, caseDir, '--runs', String(o.runs), '--threads', String(o.threads), ...(o.check ? ['--check'] : [])];
  const out = await runNode(args, { env: { ...process.env, ORT_NODE_DIR: setup.ortNodeDir }, timeoutMs: 15 * 60_000 }).catch((e: Error) => {
    // time_peer.cjs exits 1 when --check fails but still prints its result.
    const m = /exited with code 1:\n([\s\S]*)$/.exec(e.message);
    if (o.check && m) return { stdout: m[1]!, stderr: m[1]!, wallMs: Number.NaN };
    throw e;
  });
  const json = out.stdout
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{') && l.includes('create_ms'));
  if (!json) throw new Error(`time_peer.cjs printed no result:\n${out.stdout}\n${out.stderr}`);
  const r = JSON.parse(json) as { create_ms: number; first_ms: number; runs_ms: number[]; detections: number; check?: PeerSteady['check'] };
  const extra = out.stderr.split('\n').find((l) => l.startsWith('@@peer@@'));
  const preloadData = extra ? (JSON.parse(extra.slice('@@peer@@'.length)) as { peakRssMb: number; exitAtMs: number }) : { peakRssMb: Number.NaN, exitAtMs: Number.NaN };
  return {
    createMs: r.create_ms,
    firstMs: r.first_ms,
    runsMs: r.runs_ms,
    detections: r.detections,
    peakRssMb: preloadData.peakRssMb,
    firstResultAtMs: preloadData.exitAtMs - r.runs_ms.reduce((a, b) => a + b, 0),
    ...(r.check ? { check: r.check } : {}),
  };
}

/** The peer's per-operator profile (its session options as time_peer.cjs sets them). */
export interface PeerProfile {
  readonly ops: readonly { readonly op: string; readonly ms: number; readonly share: number; readonly nodes: number }[];
  readonly kernelMs: number;
  readonly runMs: number;
}

/** Profiles `runs` runs of the peer (after a warm-up run) in a child process: per-operator medians. */
export async function profilePeer(caseDir: string, threads: number, runs = 3): Promise<PeerProfile> {
  const out = await runNode([join(here, 'peer-child.js'), JSON.stringify({ caseDir, threads, runs })], { timeoutMs: 15 * 60_000 });
  return childResult<PeerProfile>(out);
}
