// What the sidecar and the approver import at run time, for the benchmarks' floor analyses (neither loads
// @kubernetes/client-node; test/unit/module-graph.test.ts keeps it so).
export const RUNTIME_IMPORTS: readonly string[] = [
  'pino',
  'prom-client',
  'chokidar',
  'zod',
  'yaml',
  'node-forge',
  'node:https',
  'node:http2',
];
