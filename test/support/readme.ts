// The install steps of README.md as the tests run them: the values files its `cat > FILE <<'EOF'` blocks
// write, and its command lines (continuations joined), so the tests cannot drift from what users copy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';

export interface ReadmeInstall {
  /** File name -> content, from each `cat > NAME <<'EOF'` ... `EOF` block. */
  readonly files: Readonly<Record<string, string>>;
  /** The shell commands of the ```sh blocks that are not heredocs, continuation lines joined. */
  readonly commands: readonly string[];
}

/** The install section's blocks (from "## Install in real clusters" to the next "## "). */
export function readmeInstall(text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')): ReadmeInstall {
  const start = text.indexOf('\n## Install in real clusters\n');
  if (start < 0) throw new Error('README.md has no "## Install in real clusters" section');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  const files: Record<string, string> = {};
  const commands: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = (block[1] ?? '').split('\n');
    for (let index = 0; index < lines.length; index++) {
      const heredoc = /^cat > (\S+) <<'EOF'$/.exec(lines[index] ?? '');
      if (heredoc?.[1] !== undefined) {
        const close = lines.indexOf('EOF', index + 1);
        if (close < 0) throw new Error(`README.md: the heredoc of ${heredoc[1]} has no EOF line`);
        files[heredoc[1]] = `${lines.slice(index + 1, close).join('\n')}\n`;
        index = close;
        continue;
      }
      let command = lines[index] ?? '';
      while (command.endsWith('\\') && index + 1 < lines.length)
        command = `${command.slice(0, -1).trimEnd()} ${(lines[++index] ?? '').trim()}`;
      if (command.trim() !== '' && !command.trimStart().startsWith('#')) commands.push(command.trim());
    }
  }
  return { files, commands };
}

/** The words of the one README command that starts with `prefix` (split on spaces: the README quotes none). */
export function readmeCommand(install: ReadmeInstall, prefix: string): string[] {
  const found = install.commands.filter((command) => command.startsWith(`${prefix} `));
  if (found.length !== 1) throw new Error(`README.md: ${String(found.length)} commands start with "${prefix}"`);
  return (found[0] ?? '').split(/\s+/);
}
