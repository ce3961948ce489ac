// Preloaded with `node --import` into a spawned command: records every package the process resolves, written
// to $KCR_LOADED_PACKAGES at exit, so a test can say what a command's real module graph holds.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const packages = new Set<string>();
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(resolved.url)?.[1];
    if (name !== undefined) packages.add(name);
    return resolved;
  },
});
process.on('exit', () => {
  writeFileSync(process.env.KCR_LOADED_PACKAGES ?? '/dev/null', [...packages].sort().join('\n'));
});
