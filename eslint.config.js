// Lint with type information: the rules that matter most here are the promise rules (a floating promise
// in a timer loop is this product's worst bug) and no non-null assertions.
import { dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers (DEVELOPERS.md, Layout): src/core/ is pure logic, so within src/ it imports only src/core/ (not
// src/io/, a program's folder such as src/sidecar/ or src/check/, nor the CLI), and no Node module that does
// I/O; nothing in src/ imports the test harness (scripts/, test/, bench/). A relative import is judged by the
// file it resolves to, so src/core/check/ (pure) is told apart from src/check/ (the command).
const HARNESS = new Set(['scripts', 'test', 'bench']);
const treePath = (path) =>
  relative(import.meta.dirname, path)
    .split(sep)
    .join('/');
const layers = {
  rules: {
    imports: {
      meta: {
        type: 'problem',
        schema: [],
        messages: {
          core: 'src/core/ is pure logic: it imports only src/core/, not {{target}}',
          harness: 'src/ does not import the test harness ({{target}})',
        },
      },
      create(context) {
        const from = treePath(context.filename);
        if (!from.startsWith('src/')) return {};
        const check = (node) => {
          const specifier = node.source?.value;
          if (typeof specifier !== 'string' || !specifier.startsWith('.')) return;
          const target = treePath(resolve(dirname(context.filename), specifier));
          if (HARNESS.has(target.split('/')[0] ?? '')) context.report({ node, messageId: 'harness', data: { target } });
          else if (from.startsWith('src/core/') && !target.startsWith('src/core/'))
            context.report({ node, messageId: 'core', data: { target } });
        };
        return {
          ImportDeclaration: check,
          ImportExpression: check,
          ExportNamedDeclaration: check,
          ExportAllDeclaration: check,
        };
      },
    },
  },
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'charts/', '.scratch/', '.cache/', 'test/pods/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // @kubernetes/client-node models are data-only classes that its serializer reads field by field; plain
      // objects (and spreads of them) are what its own examples pass.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-misused-spread': 'off',
      'no-console': 'error',
      eqeqeq: 'error',
      // ESLint's default, which the whole tree meets today. src/ also has a complexity limit (below); function
      // length has none.
      'max-depth': ['error', 4],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: {
      'layers/imports': 'error',
      // 20 is ESLint's default; the parsers of external formats (exec credentials, kubeconfigs, flags) sit at 13-19.
      complexity: ['error', 20],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(node:)?(fs|net|tls|dgram|dns|http|https|http2|child_process|worker_threads)(/.*)?$',
              message: 'src/core/ is pure logic: I/O belongs in src/io/ or the program that needs it.',
            },
          ],
        },
      ],
    },
  },
  {
    // One Kubernetes client per kind of program: the in-cluster programs use src/io/kube/rest.ts (client-node
    // costs about 60 MiB of RSS merely imported); its types may still describe the objects. The operator's
    // commands use client-node: `status --secret` (in src/sidecar/) and the kubeconfig loader they share.
    files: ['src/sidecar/**/*.ts', 'src/approver/**/*.ts', 'src/injector/**/*.ts', 'src/io/**/*.ts'],
    ignores: ['src/sidecar/status.ts', 'src/io/kube/load-kubeconfig.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              allowTypeImports: true,
              message: 'in-cluster programs use src/io/kube/rest.ts (DEVELOPERS.md: one client per kind of program).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
