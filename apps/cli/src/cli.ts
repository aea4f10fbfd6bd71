/** The `rcnn` command line: global options, command dispatch, help, and error reporting. */
import { readFileSync } from 'node:fs';
import type { Command } from './command.js';
import { parseCommand } from './command.js';
import { COMMANDS } from './commands/index.js';
import { EXIT, UsageError, reportError } from './errors.js';
import { type CliIO, flushStdout, markClosed, say } from './io.js';

/** The CLI's version (from its package.json). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The global `rcnn --help` text. */
export function globalHelp(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `Usage: rcnn <command> [options]

Detectron-style two-stage detection (Faster / Mask / Keypoint R-CNN) on onnxruntime-node.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Run "rcnn <command> --help" for a command's options.
  rcnn bench                      benchmark with the defaults (no weights or images needed)
  rcnn predict --config maskrcnn_resnet50_fpn --weights w.safetensors --draw out/ photo.jpg
  rcnn export --config maskrcnn_resnet50_fpn --weights w.safetensors --out model.onnx

Options:
  -h, --help       this help
      --version    the version of rcnn`;
}

function closest(name: string, known: readonly string[]): string | undefined {
  return known.find((k) => k.startsWith(name.slice(0, 2)));
}

/**
 * Runs `rcnn` with `argv` (without node and the script) and returns the exit status. Nothing
 * escapes as an exception: errors become two lines on stderr and a non-zero status.
 */
export async function runCli(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  if (name === undefined) {
    io.stderr.write(`${globalHelp(commands)}\n`);
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    say(io, target ? target.help : globalHelp(commands));
    return EXIT.ok;
  }
  if (name === '--version') {
    say(io, version());
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  // A closed stdout (`rcnn predict … | head -1`) is not an error of rcnn's: stop quietly (status 141).
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    if (e.code === 'EPIPE') markClosed(io.stdout);
  };
  io.stdout.on('error', onStdoutError);
  try {
    if (!command) {
      const guess = closest(name, commands.map((c) => c.name));
      throw new UsageError(`unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}`, guess ? `did you mean rcnn ${guess}?` : 'run rcnn --help');
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      say(io, command.help);
      return EXIT.ok;
    }
    const { values, positionals } = parseCommand(command, rest);
    const status = await command.run(values, positionals, io);
    // The last write may still be in flight: a reader that left meanwhile is a quiet stop, not success.
    if (status === EXIT.ok && !(await flushStdout(io))) return EXIT.brokenPipe;
    return status;
  } catch (e) {
    return reportError(e, command?.name, verbose, io.stderr);
  } finally {
    io.stdout.off('error', onStdoutError);
  }
}
