/**
 * Device strings (`cpu`, `cuda:0`, `cuda:all`) and GPU discovery. GPUs are found without a GPU
 * library: `nvidia-smi -L` lists them when the NVIDIA driver is installed; without it there are none.
 */
import { execFileSync } from 'node:child_process';
import { DeviceError } from './errors.js';

/** One device a model replica runs on. */
export interface Device {
  /** `cpu` or `cuda`. */
  readonly kind: 'cpu' | 'cuda';
  /** GPU ordinal for `cuda` (onnxruntime's `deviceId`); replica ordinal among CPU replicas for `cpu`. */
  readonly id: number;
  /** Canonical name: `cpu`, `cuda:0`, … */
  readonly name: string;
}

/** A GPU found by {@link discoverGpus}. */
export interface GpuInfo {
  readonly index: number;
  /** Product name as the driver reports it (`NVIDIA H100 80GB HBM3`). */
  readonly name: string;
  readonly uuid: string | undefined;
}

const GPU_LINE = /^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$/;

/** Parses the output of `nvidia-smi -L` (one `GPU <i>: <name> (UUID: …)` line per GPU; MIG lines ignored). */
export function parseNvidiaSmiList(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    const m = GPU_LINE.exec(line.trim());
    if (m) gpus.push({ index: Number(m[1]), name: m[2]!, uuid: m[3] });
  }
  return gpus;
}

let cachedGpus: GpuInfo[] | undefined;

/**
 * GPUs visible to this process: `nvidia-smi -L`, filtered by `CUDA_VISIBLE_DEVICES` (numeric
 * ordinals only) and renumbered as CUDA renumbers them. No `nvidia-smi` (or a failing one) means
 * no GPU. The answer is cached for the life of the process.
 */
export function discoverGpus(options: { refresh?: boolean; run?: () => string } = {}): GpuInfo[] {
  if (cachedGpus && !options.refresh && !options.run) return cachedGpus;
  let text: string;
  try {
    text = options.run ? options.run() : execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    text = '';
  }
  let gpus = parseNvidiaSmiList(text);
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && /^[\d,\s]*$/.test(visible)) {
    const order = visible.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
    gpus = order.flatMap((o, i) => {
      const g = gpus.find((x) => x.index === o);
      return g ? [{ ...g, index: i }] : [];
    });
  }
  if (!options.run) cachedGpus = gpus;
  return gpus;
}

/** Accepted device forms, for error messages and `--help`. */
export const DEVICE_FORMS = 'cpu, cpu:<n> (another CPU replica), cuda:<gpu>, cuda:all';

/** Result of {@link resolveDevices}: the devices and what needs saying about them. */
export interface ResolvedDevices {
  readonly devices: readonly Device[];
  /** `cuda:all` found no GPU: the caller falls back to CPU (with a warning) or fails in strict mode. */
  readonly noGpuForAll: boolean;
}

/**
 * Parses device strings (each may also be a comma-separated list) into one {@link Device} per
 * replica. `cuda:all` expands to every GPU {@link discoverGpus} finds. A `cuda:<n>` beyond the GPUs
 * that `nvidia-smi` lists is an error; when `nvidia-smi` is absent it is left to onnxruntime
 * (which then fails and the runtime falls back to CPU unless strict). Repeating `cpu` adds CPU
 * replicas (they split the cores between them).
 */
export function resolveDevices(specs: string | readonly string[], options: { gpus?: readonly GpuInfo[] } = {}): ResolvedDevices {
  const list = (typeof specs === 'string' ? [specs] : specs).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0);
  if (list.length === 0) throw new DeviceError('no device given', { hint: `use one of: ${DEVICE_FORMS}` });
  let gpus: readonly GpuInfo[] | undefined = options.gpus;
  const gpuList = (): readonly GpuInfo[] => (gpus ??= discoverGpus());
  const devices: Device[] = [];
  let cpuCount = 0;
  let noGpuForAll = false;
  const addCuda = (id: number): void => {
    const name = `cuda:${id}`;
    if (devices.some((d) => d.name === name)) throw new DeviceError(`device ${name} is listed twice`, { device: name, hint: 'one replica per GPU' });
    devices.push({ kind: 'cuda', id, name });
  };
  for (const spec of list) {
    if (spec === 'cpu' || /^cpu:\d+$/.test(spec)) {
      devices.push({ kind: 'cpu', id: cpuCount, name: 'cpu' });
      cpuCount++;
      continue;
    }
    if (spec === 'cuda:all' || spec === 'gpu:all') {
      const found = gpuList();
      if (found.length === 0) noGpuForAll = true;
      for (const g of found) addCuda(g.index);
      continue;
    }
    const m = /^(?:cuda|gpu)(?::(\d+))?$/.exec(spec);
    if (!m) throw new DeviceError(`unknown device "${spec}"`, { device: spec, hint: `use one of: ${DEVICE_FORMS}` });
    const id = m[1] === undefined ? 0 : Number(m[1]);
    const found = gpuList();
    if (found.length > 0 && !found.some((g) => g.index === id)) {
      throw new DeviceError(`device cuda:${id} does not exist; GPUs found: ${found.map((g) => `cuda:${g.index} (${g.name})`).join(', ')}`, {
        device: spec,
        hint: 'pick one of the GPUs listed, or use cuda:all',
      });
    }
    addCuda(id);
  }
  // Several CPU replicas are told apart by their ordinal (`cpu:0`, `cpu:1`) in results and reports.
  const named = cpuCount > 1 ? devices.map((d) => (d.kind === 'cpu' ? { ...d, name: `cpu:${d.id}` } : d)) : devices;
  return { devices: named, noGpuForAll };
}
