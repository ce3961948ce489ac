// The ClusterProfile settings of the sidecar's config: where each target's profile is, and every problem named
// by its field path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterProfileOf } from '../../../../src/core/config/cluster-profile.ts';
import { sidecarConfigSchema } from '../../../../src/core/config/sidecar.ts';
import { parseAndValidate } from '../../../../src/core/config/validate.ts';

const target = (name: string, extra = '') => `
  - name: ${name}
    bootstrapKubeconfig: /var/run/bootstrap/${name}/kubeconfig
    identity: { commonName: agent-${name} }
    sinks: { directory: { path: /var/run/kcr/${name} } }${extra}`;

function parse(text: string) {
  const result = parseAndValidate(text, sidecarConfigSchema);
  assert.ok(result.ok, result.ok ? '' : result.problems.map((problem) => problem.message).join('; '));
  return result.value;
}

function problems(text: string): string[] {
  const result = parseAndValidate(text, sidecarConfigSchema);
  assert.ok(!result.ok, 'expected the config to be refused');
  return result.problems.map((problem) => `${problem.path}: ${problem.message}`);
}

describe('sidecar configuration: ClusterProfiles', () => {
  it('keeps none unless a target asks for one or allTargets is set', () => {
    const config = parse(`targets:${target('east')}`);
    assert.deepEqual(config.clusterProfiles, { allTargets: false, healthCheckSeconds: 30 });
    assert.equal(clusterProfileOf(config.clusterProfiles, config.targets[0] ?? assert.fail()), undefined);
  });

  it("a target's own clusterProfile: name and displayName default to the target's name", () => {
    const config = parse(`targets:${target('east', '\n    clusterProfile: { namespace: fleet }')}`);
    assert.deepEqual(clusterProfileOf(config.clusterProfiles, config.targets[0] ?? assert.fail()), {
      namespace: 'fleet',
      name: 'east',
      displayName: 'east',
    });
  });

  it('the sidecar-wide namespace is the default; allTargets gives every target one', () => {
    const config = parse(
      `clusterProfiles: { namespace: fleet, allTargets: true, healthCheckSeconds: 5 }\ntargets:${target('east')}${target(
        'west',
        "\n    clusterProfile: { name: west-1, displayName: 'West (eu-west-1)' }",
      )}`,
    );
    assert.deepEqual(
      config.targets.map((each) => clusterProfileOf(config.clusterProfiles, each)),
      [
        { namespace: 'fleet', name: 'east', displayName: 'east' },
        { namespace: 'fleet', name: 'west-1', displayName: 'West (eu-west-1)' },
      ],
    );
  });

  it('names each problem by its field path: no namespace, two targets on one profile, bad names', () => {
    assert.deepEqual(problems(`clusterProfiles: { allTargets: true }\ntargets:${target('east')}`), [
      'clusterProfiles.namespace: is required with allTargets: true',
    ]);
    assert.deepEqual(problems(`targets:${target('east', '\n    clusterProfile: {}')}`), [
      'targets[0].clusterProfile.namespace: is required when clusterProfiles.namespace is not set',
    ]);
    assert.deepEqual(
      problems(
        `clusterProfiles: { namespace: fleet, allTargets: true }\ntargets:${target('east')}${target(
          'west',
          '\n    clusterProfile: { name: east }',
        )}`,
      ),
      ["targets[1].clusterProfile.name: ClusterProfile fleet/east is also targets[0]'s"],
    );
    assert.deepEqual(
      problems(`targets:${target('east', '\n    clusterProfile: { namespace: Fleet, name: a_b, extra: 1 }')}`)
        .map((problem) => problem.split(':')[0])
        .sort(),
      ['targets[0].clusterProfile.extra', 'targets[0].clusterProfile.name', 'targets[0].clusterProfile.namespace'],
    );
  });
});
