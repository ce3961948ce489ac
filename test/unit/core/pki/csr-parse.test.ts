import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import {
  DEFAULT_REQUEST_LIMITS,
  parseCertificationRequest,
  type ParsedCertificationRequest,
} from '../../../../src/core/pki/csr-parse.ts';
import { generateKeyPair, KEY_ALGORITHMS } from '../../../../src/core/pki/keys.ts';
import {
  ATTRIBUTE,
  EXTENDED_KEY_USAGE,
  EXTENSION,
  KEY_USAGE_BIT,
  emptyExtensions,
  extendedKeyUsageValue,
  keyPair,
  keyUsageValue,
  requestDer,
  requestPem,
  subject,
  subjectAltNameExtension,
  unusualRsaKey,
  type StringType,
} from '../../../support/hostile-csr.ts';

const SUBJECT = { commonName: 'agent-a', organizations: ['team-1', 'team-2'] };

function parsed(input: string | Uint8Array): ParsedCertificationRequest {
  const result = parseCertificationRequest(input);
  assert.ok(result.ok, result.ok ? '' : result.problem);
  return result.request;
}

function refusal(input: string | Uint8Array, limits = DEFAULT_REQUEST_LIMITS) {
  const result = parseCertificationRequest(input, limits);
  assert.ok(!result.ok, 'expected the request to be refused');
  return result;
}

function problem(input: string | Uint8Array): string {
  return refusal(input).problem;
}

/** A request made by openssl, the way a third party would. */
function opensslRequest(args: string[]): string {
  const result = spawnSync('openssl', ['req', '-new', '-nodes', '-keyout', '/dev/null', ...args], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

describe('parsing PKCS#10 requests', () => {
  for (const algorithm of KEY_ALGORITHMS) {
    it(`reads back our own ${algorithm} request: subject, key and a valid signature`, () => {
      const keys = generateKeyPair(algorithm);
      const request = parsed(buildCertificationRequest(SUBJECT, keys));
      assert.deepEqual(request.subject, {
        commonNames: ['agent-a'],
        organizations: ['team-1', 'team-2'],
        otherAttributes: [],
        multiValuedRdns: 0,
      });
      assert.deepEqual(
        Buffer.from(request.subjectPublicKeyInfo),
        keys.publicKey.export({ type: 'spki', format: 'der' }),
      );
      const expectedKey = algorithm.startsWith('rsa-')
        ? { type: 'rsa', bits: Number(algorithm.slice(4)), exponent: 65_537 }
        : { type: 'ec', curve: algorithm === 'ecdsa-p256' ? 'P-256' : 'P-384' };
      assert.deepEqual(request.publicKey, expectedKey);
      assert.deepEqual(request.extensions, []);
      assert.equal(request.subjectAltNames, undefined);
    });
  }

  it('accepts the PEM as bytes, as spec.request holds it', () => {
    const pem = buildCertificationRequest(SUBJECT, generateKeyPair('ecdsa-p256'));
    assert.deepEqual(parsed(Buffer.from(pem)).subject.commonNames, ['agent-a']);
  });

  it('reports every kind of subjectAltName and other subject attributes of an openssl request', () => {
    const request = parsed(
      opensslRequest([
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-subj',
        '/CN=agent-a/O=team-1/OU=unit/C=DE',
        '-addext',
        'subjectAltName=DNS:evil.example,IP:10.0.0.1,email:a@b.c,URI:spiffe://x/y,IP:::1',
      ]),
    );
    assert.deepEqual(request.subject.commonNames, ['agent-a']);
    assert.deepEqual(request.subject.otherAttributes, ['2.5.4.11', '2.5.4.6']);
    assert.deepEqual(request.subjectAltNames, {
      dnsNames: ['evil.example'],
      emailAddresses: ['a@b.c'],
      uris: ['spiffe://x/y'],
      ipAddresses: ['10.0.0.1', '0000:0000:0000:0000:0000:0000:0000:0001'],
      otherNames: 0,
    });
    assert.ok(request.extensions.some((extension) => extension.oid === '2.5.29.17'));
  });

  it('reads an RSA-1024 key size and an unusual curve so policy can refuse them', () => {
    assert.deepEqual(parsed(opensslRequest(['-newkey', 'rsa:1024', '-subj', '/CN=a'])).publicKey, {
      type: 'rsa',
      bits: 1024,
      exponent: 65_537,
    });
    assert.deepEqual(
      parsed(opensslRequest(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-subj', '/CN=a'])).publicKey,
      {
        type: 'ec',
        curve: 'secp256k1',
      },
    );
    assert.deepEqual(parsed(opensslRequest(['-newkey', 'ed25519', '-subj', '/CN=a'])).publicKey, { type: 'ed25519' });
  });

  describe('CN and O strings, read as Go reads them (issue 11)', () => {
    it('keeps a leading byte-order mark in a UTF8String, as Go does, instead of dropping it', () => {
      const request = parsed(requestPem({ subject: subject('\ufeffagent-a', ['\ufeffteam-a']) }));
      assert.deepEqual(request.subject.commonNames, ['\ufeffagent-a']);
      assert.deepEqual(request.subject.organizations, ['\ufeffteam-a']);
    });
    it("reads a PrintableString with Go's set, '*' and '&' included", () => {
      const request = parsed(
        requestPem({ subject: [[{ oid: ATTRIBUTE.commonName, value: "a-*&'()+,-./:=? Z9", type: 'printable' }]] }),
      );
      assert.deepEqual(request.subject.commonNames, ["a-*&'()+,-./:=? Z9"]);
      assert.match(
        problem(requestPem({ subject: [[{ oid: ATTRIBUTE.commonName, value: 'a_b', type: 'printable' }]] })),
        /CN .* is a PrintableString with a character outside its set/,
      );
    });
    const refusedTypes: [StringType, string][] = [
      ['bmp', 'BMPString'],
      ['t61', 'T61String'],
      ['ia5', 'IA5String'],
      ['numeric', 'NumericString'],
      ['universal', 'UniversalString'],
    ];
    for (const [type, name] of refusedTypes) {
      it(`refuses a ${name} CN or O at stage subject, naming the type`, () => {
        for (const [attribute, label] of [
          [ATTRIBUTE.commonName, 'CN'],
          [ATTRIBUTE.organizationName, 'O'],
        ] as const) {
          const result = refusal(requestPem({ subject: [[{ oid: attribute, value: '1234', type }]] }));
          assert.equal(result.stage, 'subject');
          assert.match(
            result.problem,
            new RegExp(`^${label} at offset \\d+ is a ${name}: only UTF8String and PrintableString are accepted$`),
          );
        }
      });
    }
  });

  it('reads the RSA public exponent, so policy can refuse any but 65537', () => {
    assert.deepEqual(parsed(requestPem({ keys: keyPair('rsa2048-e3') })).publicKey, {
      type: 'rsa',
      bits: 2048,
      exponent: 3,
    });
  });

  it('reads the key usages and extended key usages a request asks for', () => {
    const request = parsed(
      requestPem({
        extensions: [
          {
            oid: EXTENSION.keyUsage,
            critical: true,
            value: keyUsageValue([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyCertSign, 9]),
          },
          {
            oid: EXTENSION.extKeyUsage,
            value: extendedKeyUsageValue([EXTENDED_KEY_USAGE.clientAuth, EXTENDED_KEY_USAGE.serverAuth]),
          },
        ],
      }),
    );
    assert.deepEqual(request.keyUsages, ['digitalSignature', 'keyCertSign', 'bit 9']);
    assert.deepEqual(request.extendedKeyUsages, [EXTENDED_KEY_USAGE.clientAuth, EXTENDED_KEY_USAGE.serverAuth]);
    const plain = parsed(requestPem());
    assert.equal(plain.keyUsages, undefined);
    assert.equal(plain.extendedKeyUsages, undefined);
  });

  it('refuses a keyUsage extension that is not a bit string', () => {
    assert.match(
      problem(requestPem({ extensions: [{ oid: EXTENSION.keyUsage, value: extendedKeyUsageValue([]) }] })),
      /has tag 0x30, expected 0x3/,
    );
  });

  it('refuses a request whose signature was made by another key', () => {
    const keys = generateKeyPair('ecdsa-p256');
    const forged = buildCertificationRequest(SUBJECT, {
      ...keys,
      privateKey: generateKeyPair('ecdsa-p256').privateKey,
    });
    assert.match(problem(forged), /signature does not verify/);
  });

  it('refuses an RSA key too costly to verify before checking any signature (the requester chooses its size)', () => {
    const roomy = { ...DEFAULT_REQUEST_LIMITS, maxPemBytes: 64 * 1024 };
    assert.deepEqual(refusal(requestPem({ keys: unusualRsaKey(16_392, 65_537n) }), roomy), {
      ok: false,
      problem: 'RSA modulus of 16392 bits is larger than 16384',
      stage: 'key',
    });
    assert.deepEqual(refusal(requestPem({ keys: unusualRsaKey(2048, (1n << 40n) + 1n) })), {
      ok: false,
      problem: 'RSA public exponent is larger than 32 bits',
      stage: 'key',
    });
  });

  it('says at which stage a request was refused', () => {
    const pem = buildCertificationRequest(SUBJECT, generateKeyPair('ecdsa-p256'));
    const forged = buildCertificationRequest(SUBJECT, {
      ...generateKeyPair('ecdsa-p256'),
      privateKey: generateKeyPair('ecdsa-p256').privateKey,
    });
    const truncated = Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').subarray(0, 40).toString('base64');
    const stages = [
      pem.padEnd(20_000, ' '),
      pem + pem,
      `-----BEGIN CERTIFICATE REQUEST-----\n${truncated}\n-----END CERTIFICATE REQUEST-----\n`,
      opensslRequest([
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-pkeyopt',
        'ec_param_enc:explicit',
        '-subj',
        '/CN=a',
      ]),
      forged,
    ].map((input) => refusal(input).stage);
    assert.deepEqual(stages, ['size', 'pem', 'der', 'key', 'signature']);
  });

  it('refuses a SHA-1 signature', () => {
    assert.match(
      problem(opensslRequest(['-newkey', 'rsa:2048', '-sha1', '-subj', '/CN=a'])),
      /signature algorithm 1\.2\.840\.113549\.1\.1\.5 is not supported/,
    );
  });

  describe('form', () => {
    const pem = buildCertificationRequest(SUBJECT, generateKeyPair('ecdsa-p256'));
    const body = pem.split('\n').slice(1, -2).join('');

    it('refuses two PEM blocks', () => {
      assert.match(problem(pem + pem), /2 PEM blocks, expected exactly one/);
    });
    it('refuses data after the block', () => {
      assert.match(problem(`${pem}garbage\n`), /data outside the block/);
    });
    it('refuses another PEM type', () => {
      assert.match(problem(pem.replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE')), /PEM block is "CERTIFICATE"/);
    });
    it('refuses an oversized request before parsing it', () => {
      assert.match(problem(pem.padEnd(20_000, ' ')), /20000 bytes, more than the limit of 16384/);
    });
    it('refuses bytes after the DER structure inside the block', () => {
      const der = Buffer.concat([Buffer.from(body, 'base64'), Buffer.from([0, 0])]);
      assert.match(
        problem(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`),
        /2 bytes after the element/,
      );
    });
    it('refuses a truncated structure', () => {
      const der = Buffer.from(body, 'base64').subarray(0, 50);
      assert.match(
        problem(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`),
        /claims \d+ bytes/,
      );
    });
    it('refuses nesting deeper than the limit (the parser only descends into known structure, never deeper)', () => {
      const result = parseCertificationRequest(pem, { ...DEFAULT_REQUEST_LIMITS, maxDepth: 3 });
      assert.ok(!result.ok);
      assert.match(result.problem, /nesting deeper than 3/);
    });
    it('refuses an empty or non-PEM input', () => {
      assert.match(problem(''), /no PEM block/);
      assert.match(problem(Buffer.from([0x30, 0x82, 0xff, 0xff])), /non-ASCII/);
    });
  });

  describe('bounded counts: what a request may carry (issue 22)', () => {
    it('refuses 1,400 empty extensions in under 16 KiB at stage size, naming the limit', () => {
      const pem = requestPem({ extensions: emptyExtensions(1_400) });
      assert.ok(pem.length < DEFAULT_REQUEST_LIMITS.maxPemBytes, 'small enough for the size limit alone');
      const result = refusal(pem);
      assert.equal(result.stage, 'size');
      assert.match(result.problem, /more than the limit of 16 extensions/);
    });
    it('accepts as many extensions as the limit, and refuses one more', () => {
      assert.equal(parsed(requestPem({ extensions: emptyExtensions(16) })).extensions.length, 16);
      assert.match(problem(requestPem({ extensions: emptyExtensions(17) })), /more than the limit of 16 extensions/);
    });
    it('refuses more request attributes, or attribute values, than the limit', () => {
      const attributes = Array.from({ length: 5 }, (_, index) => ({ oid: `2.${String(200 + index)}`, value: 'x' }));
      assert.match(problem(requestPem({ attributes })), /more than the limit of 4 request attributes/);
      assert.equal(parsed(requestPem({ attributes: attributes.slice(0, 4) })).otherAttributes.length, 4);
    });
    it('refuses more subject attributes than the limit, in separate RDNs or in one', () => {
      const organizations = Array.from({ length: 64 }, (_, index) => `team-${String(index)}`);
      assert.match(
        problem(requestPem({ subject: subject('agent', organizations) })),
        /more than the limit of 64 subject attributes/,
      );
      assert.equal(
        parsed(requestPem({ subject: subject('agent', organizations.slice(1)) })).subject.organizations.length,
        63,
      );
      const oneRdn = organizations.map((value) => ({ oid: ATTRIBUTE.organizationName, value }));
      assert.match(
        problem(requestPem({ subject: [[{ oid: ATTRIBUTE.commonName, value: 'agent' }, ...oneRdn]] })),
        /more than the limit of 64 subject attributes/,
      );
    });
    it('refuses more subjectAltName names or extendedKeyUsage purposes than the limit', () => {
      const names = Array.from({ length: 17 }, (_, index) => ({ dns: `n${String(index)}.example` }));
      assert.match(
        problem(requestPem({ extensions: [subjectAltNameExtension(names)] })),
        /more than the limit of 16 subjectAltName names/,
      );
      const purposes = Array.from({ length: 17 }, (_, index) => `2.${String(300 + index)}`);
      assert.match(
        problem(requestPem({ extensions: [{ oid: EXTENSION.extKeyUsage, value: extendedKeyUsageValue(purposes) }] })),
        /more than the limit of 16 extendedKeyUsage purposes/,
      );
    });
    it('finds a duplicate extension in linear time (20,000 extensions: 2.8 s when it was quadratic)', () => {
      const extensions = emptyExtensions(20_000);
      const pem = requestPem({ extensions: [...extensions, ...extensions.slice(0, 1)] });
      const roomy = { ...DEFAULT_REQUEST_LIMITS, maxPemBytes: 1 << 20, maxExtensions: 1 << 20 };
      const started = performance.now();
      const result = refusal(pem, roomy);
      const elapsed = performance.now() - started;
      assert.match(result.problem, /extension 2\.100 appears twice/);
      assert.ok(elapsed < 1_000, `took ${elapsed.toFixed(0)} ms`);
    });
    it('keeps no view of the input: the key bytes are a copy, and a quoted label is cut short', () => {
      const input = Buffer.from(requestPem());
      const request = parsed(input);
      assert.equal(request.subjectPublicKeyInfo.buffer.byteLength, request.subjectPublicKeyInfo.byteLength);
      const der = requestDer();
      const label = 'X'.repeat(8_000);
      const result = refusal(`-----BEGIN ${label}-----\n${der.toString('base64')}\n-----END ${label}-----\n`);
      assert.ok(result.problem.length < 200, result.problem);
      assert.match(result.problem, /PEM block is "X{40}\.\.\."/);
    });
  });
});
