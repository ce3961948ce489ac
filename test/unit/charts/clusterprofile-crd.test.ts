// The sidecar chart's ClusterProfile CRD must be the pinned sigs.k8s.io/cluster-inventory-api's, byte for byte
// under our header: a hand edit, or a new pinned version without `node scripts/clusterprofile-crd.ts`, fails.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  CHART_CRD_PATH,
  chartCrdText,
  CLUSTER_INVENTORY_VERSION,
  moduleCrd,
} from '../../../scripts/clusterprofile-crd.ts';

describe('the sidecar chart ClusterProfile CRD', () => {
  it(`is the one of sigs.k8s.io/cluster-inventory-api@${CLUSTER_INVENTORY_VERSION} (node scripts/clusterprofile-crd.ts)`, () => {
    const crd = moduleCrd();
    assert.match(crd, /name: clusterprofiles\.multicluster\.x-k8s\.io/);
    assert.equal(readFileSync(CHART_CRD_PATH, 'utf8'), chartCrdText(crd));
  });
});
