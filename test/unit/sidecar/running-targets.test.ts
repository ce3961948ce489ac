// Starting, stopping and reloading targets, with stand-in rotators that record what happens to them: the
// order of a restart, changes applied one after another, nothing started after shutdown, crashes reported.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  sidecarConfigSchema,
  targetSchema,
  type SidecarConfig,
  type TargetConfig,
} from '../../../src/core/config/sidecar.ts';
import { resolveTarget } from '../../../src/sidecar/config.ts';
import { createLogger } from '../../../src/io/log.ts';
import { configChange, RunningTargets, type ManagedTarget } from '../../../src/sidecar/running-targets.ts';
import type { TargetStatus } from '../../../src/sidecar/rotator.ts';
import { eventually } from '../../support/eventually.ts';
import { settle } from '../../support/manual-clock.ts';
import { MemorySink } from '../../support/memory-sinks.ts';

const target = (name: string, commonName = `agent-${name}`): TargetConfig =>
  resolveTarget(
    targetSchema.parse({
      name,
      bootstrapKubeconfig: `/bootstrap/${name}/kubeconfig`,
      identity: { commonName, organizations: ['agents'] },
      sinks: { directory: { path: `/out/${name}` } },
    }),
    {},
  );
const sidecarConfig = (targets: TargetConfig[], extra: object = {}): SidecarConfig => ({
  ...sidecarConfigSchema.parse({ stateDir: '/state', targets, ...extra }),
  targets,
});

/** The stand-ins take a few turns of the event loop: checked every one. */
const soon = <T>(condition: () => T) => eventually(condition, { timeoutMs: 5_000, intervalMs: 0 });

/** A sink that logs when it is watched and unwatched. */
class WatchedSink extends MemorySink {
  readonly #log: string[];

  constructor(description: string, log: string[]) {
    super(description);
    this.#log = log;
  }

  override async watch(onChange: () => void): Promise<{ close(): Promise<void> }> {
    await super.watch(onChange);
    this.#log.push(`${this.description} watched`);
    return {
      close: () => {
        this.#log.push(`${this.description} unwatched`);
        return Promise.resolve();
      },
    };
  }
}

/** Runs until stopped (or fails when told to); its stop takes a few ticks, like a write finishing. */
class StandInTarget implements ManagedTarget {
  readonly name: string;
  readonly sink: WatchedSink;
  ready = true;
  checks = 0;
  bootstrapChanges = 0;
  failWith: Error | undefined;
  readonly #log: string[];

  constructor(config: TargetConfig, log: string[]) {
    this.name = config.name;
    this.#log = log;
    this.sink = new WatchedSink(`${config.name}/${String(config.identity?.commonName)} sink`, log);
  }

  sinks() {
    return [this.sink];
  }

  async run(signal: AbortSignal): Promise<void> {
    this.#log.push(`${this.name} running`);
    await new Promise<void>((resolve, reject) => {
      if (this.failWith !== undefined) reject(this.failWith);
      if (signal.aborted) resolve();
      signal.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
    });
    await settle();
    this.#log.push(`${this.name} stopped`);
  }

  status(): TargetStatus {
    return { name: this.name, ready: this.ready, detail: this.ready ? 'fine' : 'no certificate yet' };
  }

  checkOutputs(): void {
    this.checks++;
  }

  bootstrapChanged(): void {
    this.bootstrapChanges++;
  }
}

function setup(options: { failFirstRun?: string; failWatch?: string } = {}) {
  const log: string[] = [];
  const errors: string[] = [];
  const created: StandInTarget[] = [];
  const shutdown = new AbortController();
  let crashes = 0;
  const targets = new RunningTargets({
    create: (config) => {
      const standIn = new StandInTarget(config, log);
      if (config.name === options.failFirstRun && created.every((one) => one.name !== config.name))
        standIn.failWith = new Error('a bug');
      if (config.identity?.commonName === options.failWatch)
        standIn.sink.watch = () => Promise.reject(new Error('cannot watch /out'));
      created.push(standIn);
      return standIn;
    },
    signal: shutdown.signal,
    logger: createLogger({
      name: 'test',
      destination: {
        write: (line: string) => {
          const { msg, target: name, error } = JSON.parse(line) as { msg: string; target: string; error: string };
          errors.push(`${name}: ${msg}: ${error}`);
        },
      },
    }),
    crashed: () => {
      crashes++;
    },
  });
  return { targets, log, errors, created, shutdown, crashCount: () => crashes };
}

describe('what a config change changes', () => {
  it('names the targets added, removed or changed in any field, and nothing else', () => {
    const before = sidecarConfig([target('east'), target('west'), target('north')]);
    const after = sidecarConfig([target('east'), target('west', 'agent-renamed'), target('south')]);
    assert.deepEqual(configChange(before, after), { targets: ['west', 'north', 'south'], global: false });
    assert.deepEqual(configChange(before, before), { targets: [], global: false });
  });

  it('says when a field outside the targets changed', () => {
    const before = sidecarConfig([target('east')]);
    assert.deepEqual(configChange(before, sidecarConfig([target('east')], { logLevel: 'debug' })), {
      targets: [],
      global: true,
    });
  });
});

describe('the running targets', () => {
  it('starts a target with its sinks watched first; a watch event makes it check its outputs', async () => {
    const { targets, log, created } = setup();
    await targets.start(target('east'));
    await soon(() => log.includes('east running'));
    assert.deepEqual(log, ['east/agent-east sink watched', 'east running']);
    created[0]?.sink.onChange?.();
    assert.equal(created[0]?.checks, 1);
    assert.equal(targets.rotator('east'), created[0]);
  });

  it('a restart stops the old loop (and then its watches) before the new one starts', async () => {
    const { targets, log } = setup();
    await targets.start(target('east'));
    await soon(() => log.includes('east running'));
    log.length = 0;
    targets.apply(['east'], [target('east', 'agent-renamed')]);
    await targets.stopAll();
    assert.deepEqual(log, [
      'east stopped',
      'east/agent-east sink unwatched',
      'east/agent-renamed sink watched',
      'east running',
      'east stopped',
      'east/agent-renamed sink unwatched',
    ]);
  });

  it('applies changes one after another, starting added targets and stopping removed ones', async () => {
    const { targets, log } = setup();
    await targets.start(target('east'));
    await targets.start(target('west'));
    await soon(() => log.includes('east running') && log.includes('west running'));
    log.length = 0;
    targets.apply(['west', 'north'], [target('east'), target('north')]);
    // A second change while the first is still stopping west: applied after it, never interleaved.
    targets.apply(['north'], [target('east')]);
    await targets.stopAll();
    assert.deepEqual(log, [
      'west stopped',
      'west/agent-west sink unwatched',
      'north/agent-north sink watched',
      'north running',
      'north stopped',
      'north/agent-north sink unwatched',
      'east stopped',
      'east/agent-east sink unwatched',
    ]);
    assert.deepEqual(targets.rotators(), []);
  });

  it('starts nothing once shutdown began', async () => {
    const { targets, log, shutdown } = setup();
    await targets.start(target('east'));
    shutdown.abort();
    targets.apply(['east', 'west'], [target('east', 'agent-renamed'), target('west')]);
    await targets.stopAll();
    assert.deepEqual(
      log.filter((line) => line.endsWith('running')),
      ['east running'],
    );
  });

  it('a target that cannot start is reported, and the changes after it still apply', async () => {
    const { targets, errors } = setup({ failWatch: 'agent-bad' });
    targets.apply(['east', 'west'], [target('east', 'agent-bad'), target('west')]);
    await soon(() => targets.rotators().length > 0);
    assert.deepEqual(errors, ['east: could not start target: cannot watch /out']);
    assert.deepEqual(
      targets.rotators().map((rotator) => rotator.name),
      ['west'],
    );
    await targets.stopAll();
  });

  it('a loop that ends with an error marks the process crashed and says so', async () => {
    const { targets, errors, crashCount } = setup({ failFirstRun: 'east' });
    await targets.start(target('east'));
    await soon(() => crashCount() > 0);
    assert.equal(crashCount(), 1);
    assert.deepEqual(errors, ['east: target loop stopped unexpectedly; /healthz now fails: a bug']);
    await targets.stopAll();
  });

  it("is ready when it runs at least one target and every one is ready, with each one's detail", async () => {
    const { targets, created } = setup();
    assert.deepEqual(targets.readiness(), { ready: false, details: [] });
    await targets.start(target('east'));
    await targets.start(target('west'));
    assert.deepEqual(targets.readiness(), {
      ready: true,
      details: ['east: ready: fine', 'west: ready: fine'],
    });
    const [, west] = created;
    if (west !== undefined) west.ready = false;
    assert.deepEqual(targets.readiness(), {
      ready: false,
      details: ['east: ready: fine', 'west: not ready: no certificate yet'],
    });
    await targets.stopAll();
  });
});
