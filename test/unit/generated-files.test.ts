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

  it('a chart target reuses the sidecar target fields, with the bootstrap Secret instead of a path', () => {
    const schema = JSON.parse(
      renderValuesSchema(CHART_SCHEMAS['kubeconfig-rotator-sidecar'] ?? assert.fail('no sidecar chart schema')),
    ) as {
      properties: { targets: { items: { properties: Record<string, unknown>; required: string[] } } };
    };
    const target = schema.properties.targets.items;
    assert.ok(
      'keyAlgorithm' in target.properties &&
        'rotation' in target.properties &&
        'expirationSeconds' in target.properties,
    );
    assert.ok(!('bootstrapKubeconfig' in target.properties));
    // identity (certificate targets) and serviceAccount (token targets) depend on credential: the program's check.
    assert.deepEqual(target.required.sort(), ['bootstrapSecret', 'name', 'sinks']);
    assert.ok('credential' in target.properties && 'serviceAccount' in target.properties);
  });
});

describe('configuration reference', () => {
  it('docs/configuration.md is generated from the current schemas (npm run generate:docs)', () => {
    assert.equal(readFileSync(CONFIGURATION_DOC, 'utf8'), renderConfigurationDoc());
  });
});
