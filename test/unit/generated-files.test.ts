// The charts' values.schema.json files are generated from the programs' own schemas; a stale file fails.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CHART_SCHEMAS } from '../../scripts/chart-schemas.ts';
import { CONFIGURATION_DOC, renderConfigurationDoc } from '../../scripts/generate-docs.ts';
import { renderValuesSchema, valuesSchemaPath } from '../../scripts/generate-schemas.ts';

describe('chart values schemas', () => {
  for (const [chart, schema] of Object.entries(CHART_SCHEMAS)) {
    it(`${chart}/values.schema.json is generated from the current schema (npm run generate:schemas)`, () => {
      assert.equal(readFileSync(valuesSchemaPath(chart), 'utf8'), renderValuesSchema(schema));
    });
  }

  it('a chart target reuses the sidecar target fields, with the bootstrap Secret instead of a path, one object per credential kind, chosen by credential', () => {
    interface Branch {
      properties: Record<string, { const?: string; not?: unknown }>;
      required: string[];
    }
    interface Condition {
      if?: { properties: { credential: { const: string } } };
      then?: Branch;
      else?: Condition;
    }
    const schema = JSON.parse(
      renderValuesSchema(CHART_SCHEMAS['kubeconfig-rotator-sidecar'] ?? assert.fail('no sidecar chart schema')),
    ) as { properties: { targets: { items: Condition } } };
    // if credential is token then..., else if federated then..., else certificate (the default).
    const branches = new Map<string, Branch>();
    let condition: Condition | undefined = schema.properties.targets.items;
    while (condition?.if !== undefined && condition.then !== undefined) {
      branches.set(condition.if.properties.credential.const, condition.then);
      condition = condition.else;
    }
    branches.set('certificate', (condition ?? assert.fail('no default branch')) as Branch);
    assert.deepEqual([...branches.keys()], ['token', 'federated', 'certificate']);
    const own = (kind: string) => {
      const branch = branches.get(kind) ?? assert.fail(kind);
      assert.ok(!('bootstrapKubeconfig' in branch.properties));
      assert.ok('rotation' in branch.properties && 'expirationSeconds' in branch.properties);
      return {
        fields: Object.keys(branch.properties).filter((field) => branch.properties[field]?.not === undefined),
        required: [...branch.required].sort(),
      };
    };
    const certificate = own('certificate');
    assert.ok(certificate.fields.includes('keyAlgorithm') && !certificate.fields.includes('serviceAccount'));
    // credential may be left out for a certificate target (the default); each kind requires its own fields.
    assert.deepEqual(certificate.required, ['bootstrapSecret', 'identity', 'name', 'sinks']);
    const token = own('token');
    assert.ok(token.fields.includes('serviceAccount') && !token.fields.includes('keyAlgorithm'));
    assert.deepEqual(token.required, ['bootstrapSecret', 'credential', 'name', 'serviceAccount', 'sinks']);
    const federated = own('federated');
    assert.ok(federated.fields.includes('targetUser') && !federated.fields.includes('identity'));
    assert.deepEqual(federated.required, ['audiences', 'bootstrapSecret', 'credential', 'name', 'sinks']);
  });
});

describe('configuration reference', () => {
  it('docs/configuration.md is generated from the current schemas (npm run generate:docs)', () => {
    assert.equal(readFileSync(CONFIGURATION_DOC, 'utf8'), renderConfigurationDoc());
  });
});
