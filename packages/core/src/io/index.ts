/** File I/O helpers every package shares: atomic output writes, output-path checks, printable names. */
export * from './atomic-write.js';
export * from './output-paths.js';
export * from './printable.js';
