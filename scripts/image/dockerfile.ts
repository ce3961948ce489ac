// What the Dockerfile's final stage says about the image it makes: its base, user, entrypoint, command,
// environment, working directory and the paths it copies in. The engine-free build takes its runtime
// settings from here, so the two recipes cannot drift apart on them; a test checks the rest.
import { basename, posix } from 'node:path';

export interface FinalStage {
  /** The FROM image with the Dockerfile's ARG defaults substituted. */
  readonly base: string;
  readonly user: string;
  readonly workdir: string;
  /** KEY=VALUE, in the order the ENV lines set them. */
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** The absolute paths the stage's COPY lines create, in order. */
  readonly contents: readonly string[];
}

/** Logical lines: comments dropped, backslash continuations joined, each with its first line number. */
function instructions(text: string): { line: number; keyword: string; rest: string }[] {
  const result: { line: number; keyword: string; rest: string }[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = pending + line;
    pending = '';
    const match = /^(\S+)\s*(.*)$/.exec(whole);
    if (match !== null) result.push({ line: start, keyword: (match[1] ?? '').toUpperCase(), rest: match[2] ?? '' });
  });
  return result;
}

function substitute(value: string, args: ReadonlyMap<string, string>, where: string): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const found = args.get(name);
    if (found === undefined) throw new Error(`${where}: $${name} has no default value`);
    return found;
  });
}

function execForm(rest: string, where: string): string[] {
  let words: unknown;
  try {
    words = JSON.parse(rest);
  } catch (error) {
    throw new Error(`${where}: only the exec (JSON array) form is supported`, { cause: error });
  }
  if (!Array.isArray(words) || !words.every((word) => typeof word === 'string'))
    throw new Error(`${where}: expected a JSON array of strings`);
  return words;
}

function newStage(base: string) {
  return {
    base,
    user: 'root',
    workdir: '/',
    env: [] as string[],
    entrypoint: [] as string[],
    cmd: [] as string[],
    contents: [] as string[],
  };
}

/** Reads the final stage of a Dockerfile; `file` names it in errors. */
export function parseFinalStage(text: string, file = 'Dockerfile'): FinalStage {
  const args = new Map<string, string>();
  let state = newStage('');
  for (const { line, keyword, rest } of instructions(text)) {
    const where = `${file}:${String(line)}`;
    switch (keyword) {
      case 'ARG': {
        const [name = '', value] = rest.split('=', 2);
        // Only ARGs before the first FROM are visible to FROM lines.
        if (value !== undefined && state.base === '') args.set(name.trim(), value.trim());
        break;
      }
      case 'FROM': {
        const [image = ''] = rest.split(/\s+/);
        state = newStage(substitute(image, args, where));
        break;
      }
      case 'USER':
        state.user = rest.trim();
        break;
      case 'WORKDIR':
        state.workdir = posix.resolve(state.workdir, rest.trim());
        break;
      case 'ENV':
        for (const pair of rest.split(/\s+/)) {
          if (!pair.includes('=')) throw new Error(`${where}: ENV must be KEY=VALUE pairs`);
          state.env.push(pair);
        }
        break;
      case 'ENTRYPOINT':
        state.entrypoint = execForm(rest, where);
        // As with an engine: a new ENTRYPOINT resets an earlier CMD.
        state.cmd = [];
        break;
      case 'CMD':
        state.cmd = execForm(rest, where);
        break;
      case 'COPY': {
        const words = rest.split(/\s+/).filter((word) => !word.startsWith('--'));
        const destination = words.pop();
        if (destination === undefined || words.length === 0)
          throw new Error(`${where}: COPY needs a source and a destination`);
        const target = posix.resolve(state.workdir, destination);
        for (const source of words)
          state.contents.push(destination.endsWith('/') ? posix.join(target, basename(source)) : target);
        break;
      }
      default:
        break;
    }
  }
  if (state.base === '') throw new Error(`${file}: no FROM line`);
  return state;
}

/** "node:24.21.0-bookworm-slim" -> Node 24.21.0 on Debian bookworm. */
export function nodeBase(base: string): { nodeVersion: string; debianRelease: string } {
  const match = /^(?:docker\.io\/(?:library\/)?)?node:(\d+\.\d+\.\d+)-([a-z]+)(?:-slim)?$/.exec(base);
  if (match === null) throw new Error(`base image "${base}" is not node:<x.y.z>-<debian release>[-slim]`);
  return { nodeVersion: match[1] ?? '', debianRelease: match[2] ?? '' };
}
