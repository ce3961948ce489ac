// Reading the Dockerfile's final stage, which the engine-free image build takes its runtime settings from.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeBase, parseFinalStage } from '../../../../scripts/image/dockerfile.ts';

const DOCKERFILE = `# comment
ARG BASE=node:1.2.3-trixie-slim
FROM \${BASE} AS build
WORKDIR /src
USER 5
ENTRYPOINT ["ignored"]

FROM $BASE
ENV A=1 B=two
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist \\
     ./dist
COPY package.json README.md ./
USER 1000:1000
ENTRYPOINT ["node", "--flag", "/app/dist/cli.js"]
CMD ["--help"]
`;

describe('parseFinalStage', () => {
  it('reads the last stage: base with ARG defaults, user, workdir, env, entrypoint, command and copied paths', () => {
    assert.deepEqual(parseFinalStage(DOCKERFILE), {
      base: 'node:1.2.3-trixie-slim',
      user: '1000:1000',
      workdir: '/app',
      env: ['A=1', 'B=two'],
      entrypoint: ['node', '--flag', '/app/dist/cli.js'],
      cmd: ['--help'],
      contents: ['/app/node_modules', '/app/dist', '/app/package.json', '/app/README.md'],
    });
  });

  it('resets CMD on a later ENTRYPOINT, as an engine does', () => {
    assert.deepEqual(parseFinalStage('FROM x\nCMD ["a"]\nENTRYPOINT ["b"]\n').cmd, []);
  });

  it('names the file and line of what it cannot read', () => {
    assert.throws(
      () => parseFinalStage('FROM x\nENTRYPOINT node cli.js\n', 'Dockerfile'),
      /Dockerfile:2: only the exec/,
    );
    assert.throws(() => parseFinalStage('FROM ${MISSING}\n'), /Dockerfile:1: \$MISSING has no default value/);
    assert.throws(() => parseFinalStage('# nothing\n'), /no FROM line/);
  });
});

describe('nodeBase', () => {
  it('reads the Node version and the Debian release of an official node image tag', () => {
    assert.deepEqual(nodeBase('node:24.21.0-bookworm-slim'), { nodeVersion: '24.21.0', debianRelease: 'bookworm' });
    assert.throws(() => nodeBase('node:24-alpine'), /not node:<x.y.z>-<debian release>/);
  });
});
