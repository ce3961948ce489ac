// A node --test reporter for the support matrix (npm run test:matrix): one JSON line per finished test, naming
// its file, which the spec reporter leaves out and the matrix needs to tell features apart. A suite is written
// only when it fails (a failing hook fails the suite, not its tests).
import { relative } from 'node:path';
import type { TestEvent } from 'node:test/reporters';
import type { TestResult } from './features.ts';

export default async function* resultsReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, file, skip, details } = event.data;
    const passed = event.type === 'test:pass';
    if (details.type === 'suite' && passed) continue;
    const result: TestResult = {
      file: file === undefined ? '' : relative(process.cwd(), file),
      name,
      outcome: skip !== undefined && skip !== false ? 'skip' : passed ? 'pass' : 'fail',
      durationMs: Math.round(details.duration_ms),
    };
    yield `${JSON.stringify(result)}\n`;
  }
}
