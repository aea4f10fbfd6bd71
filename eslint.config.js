// Lint rules shared by every package: typescript-eslint's recommended set plus the project's
// conventions (no `any` in code, no default exports).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/build/**', '**/node_modules/**', '**/*.d.ts', '.scratch/**', 'fixtures/**', '.nx/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports (project convention).' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Entry points (the files of the `exports` maps) list their public names one by one, so a new
    // internal export never becomes public API by accident. `export * as ns` stays allowed.
    files: ['*/*/src/index.ts', '*/*/src/web.ts', 'packages/runtime/src/toy/index.ts', 'packages/runtime/src/training/index.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports (project convention).' },
        { selector: 'ExportAllDeclaration[exported=null]', message: 'Entry points list their exports by name (docs/architecture.md, Public surfaces).' },
      ],
    },
  },
);
