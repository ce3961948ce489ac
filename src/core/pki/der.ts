// A strict DER reader for untrusted input: definite lengths in their shortest form, single-byte tags,
// bounded nesting, and every element keeps its exact bytes (a signature is checked over the bytes as sent,
// never over a re-encoding).

export class DerError extends Error {}

export interface DerElement {
  /** The identifier octet: class (bits 8-7), constructed (bit 6), tag number (bits 5-1). */
  readonly tag: number;
  /** The whole element, header included. */
  readonly bytes: Uint8Array;
  /** The contents octets. */
  readonly contents: Uint8Array;
  /** Where this element starts in the outermost input (for error messages). */
  readonly offset: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export const contextTag = (number: number, constructed: boolean) => 0x80 | (constructed ? 0x20 : 0) | number;

export interface DerLimits {
  /** Deepest nesting that children() may descend to; the outermost element is depth 0. */
  readonly maxDepth: number;
}

/** Reads exactly one element that spans all of `input`. */
export function readElement(input: Uint8Array, offset = 0): DerElement {
  const element = readAt(input, 0, offset);
  if (element.bytes.length !== input.length) {
    throw new DerError(
      `${String(input.length - element.bytes.length)} bytes after the element at offset ${String(offset)}`,
    );
  }
  return element;
}

function readAt(input: Uint8Array, start: number, base: number): DerElement {
  const at = base + start;
  if (input.length - start < 2) throw new DerError(`truncated element header at offset ${String(at)}`);
  const tag = input[start] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${String(at)}`);
  const first = input[start + 1] ?? 0;
  let length: number;
  let headerLength: number;
  if (first < 0x80) {
    length = first;
    headerLength = 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at offset ${String(at)} (BER, not DER)`);
    if (count > 3) throw new DerError(`length of ${String(count)} octets at offset ${String(at)} is too large`);
    if (input.length - start < 2 + count) throw new DerError(`truncated length at offset ${String(at)}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (input[start + 2 + i] ?? 0);
    const shortest = length < 0x80 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3;
    if (count !== shortest) throw new DerError(`length at offset ${String(at)} is not in its shortest form`);
    headerLength = 2 + count;
  }
  const end = start + headerLength + length;
  if (end > input.length)
    throw new DerError(
      `element at offset ${String(at)} claims ${String(length)} bytes, ${String(input.length - start - headerLength)} remain`,
    );
  return {
    tag,
    bytes: input.subarray(start, end),
    contents: input.subarray(start + headerLength, end),
    offset: at,
  };
}

export function isConstructed(element: DerElement): boolean {
  return (element.tag & 0x20) !== 0;
}

/** A count of elements beyond what the caller accepts (too many extensions, RDNs...). */
export class DerCountError extends DerError {}

/** At most `max` elements, named `what` (plural) in the error. */
export interface CountLimit {
  readonly max: number;
  readonly what: string;
}

/**
 * The elements inside a constructed element; `depth` is the parent's depth. With `count`, reading stops at the
 * first element beyond `count.max`, so a request of thousands of tiny elements costs no more than the limit.
 */
export function children(element: DerElement, depth: number, limits: DerLimits, count?: CountLimit): DerElement[] {
  if (!isConstructed(element)) throw new DerError(`element at offset ${String(element.offset)} is not constructed`);
  if (depth + 1 > limits.maxDepth)
    throw new DerError(`nesting deeper than ${String(limits.maxDepth)} at offset ${String(element.offset)}`);
  const headerLength = element.bytes.length - element.contents.length;
  const out: DerElement[] = [];
  let position = 0;
  while (position < element.contents.length) {
    if (count !== undefined && out.length === count.max)
      throw new DerCountError(
        `more than the limit of ${String(count.max)} ${count.what} (in the element at offset ${String(element.offset)})`,
      );
    const child = readAt(element.contents, position, element.offset + headerLength);
    out.push(child);
    position += child.bytes.length;
  }
  return out;
}

export function expectTag(element: DerElement | undefined, tag: number, what: string): DerElement {
  if (element === undefined) throw new DerError(`${what} is missing`);
  if (element.tag !== tag) {
    throw new DerError(
      `${what} at offset ${String(element.offset)} has tag 0x${element.tag.toString(16)}, expected 0x${tag.toString(16)}`,
    );
  }
  return element;
}

export function decodeOid(element: DerElement): string {
  const bytes = expectTag(element, TAG.OID, 'object identifier').contents;
  if (bytes.length === 0 || bytes.length > 64)
    throw new DerError(`object identifier at offset ${String(element.offset)} has ${String(bytes.length)} bytes`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] ?? 0;
    if (value === 0 && byte === 0x80)
      throw new DerError(`object identifier at offset ${String(element.offset)} has a padded arc`);
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128)
      throw new DerError(`object identifier at offset ${String(element.offset)} has an arc too large`);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    } else if (i === bytes.length - 1) {
      throw new DerError(`object identifier at offset ${String(element.offset)} ends inside an arc`);
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** BIT STRING contents with no unused bits (signatures, public keys). */
export function decodeOctetAlignedBitString(element: DerElement): Uint8Array {
  const contents = expectTag(element, TAG.BIT_STRING, 'bit string').contents;
  if (contents.length === 0) throw new DerError(`empty bit string at offset ${String(element.offset)}`);
  if (contents[0] !== 0) throw new DerError(`bit string at offset ${String(element.offset)} has unused bits`);
  return contents.subarray(1);
}

/** The numbers of the bits set in a named-bit BIT STRING (keyUsage); bit 0 is the first byte's high bit. */
export function decodeNamedBits(element: DerElement): number[] {
  const contents = expectTag(element, TAG.BIT_STRING, 'bit string').contents;
  const unused = contents[0];
  if (unused === undefined || unused > 7 || (contents.length === 1 && unused !== 0))
    throw new DerError(`bit string at offset ${String(element.offset)} has a bad unused-bits count`);
  const bits: number[] = [];
  const length = (contents.length - 1) * 8 - unused;
  for (let bit = 0; bit < length; bit++)
    if (((contents[1 + (bit >> 3)] ?? 0) & (0x80 >> (bit & 7))) !== 0) bits.push(bit);
  return bits;
}

export function decodeSmallInteger(element: DerElement): number {
  const contents = expectTag(element, TAG.INTEGER, 'integer').contents;
  if (contents.length === 0 || contents.length > 4)
    throw new DerError(`integer at offset ${String(element.offset)} has ${String(contents.length)} bytes`);
  if (contents.length > 1 && contents[0] === 0 && ((contents[1] ?? 0) & 0x80) === 0) {
    throw new DerError(`integer at offset ${String(element.offset)} is not minimally encoded`);
  }
  if (((contents[0] ?? 0) & 0x80) !== 0) throw new DerError(`integer at offset ${String(element.offset)} is negative`);
  return contents.reduce((value, byte) => value * 256 + byte, 0);
}

export function decodeBoolean(element: DerElement): boolean {
  const contents = expectTag(element, TAG.BOOLEAN, 'boolean').contents;
  if (contents.length !== 1 || (contents[0] !== 0 && contents[0] !== 0xff)) {
    throw new DerError(`boolean at offset ${String(element.offset)} is not DER (one byte, 00 or ff)`);
  }
  return contents[0] === 0xff;
}

// As Go's encoding/asn1: a leading U+FEFF is part of the string, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A directory string of a type Go (the apiserver's crypto/x509) reads differently from us, or at all. */
export class UnsupportedStringError extends DerError {}

const STRING_TYPE_NAMES: Record<number, string> = {
  0x12: 'NumericString',
  0x14: 'T61String',
  0x15: 'VideotexString',
  0x16: 'IA5String',
  0x19: 'GraphicString',
  0x1a: 'VisibleString',
  0x1b: 'GeneralString',
  0x1c: 'UniversalString',
  0x1e: 'BMPString',
};

// Go's PrintableString set, which also admits '*' and '&' (encoding/asn1 isPrintable, as the apiserver parses).
const PRINTABLE = /^[A-Za-z0-9 '()*+,\-./:=?&]*$/;

/**
 * A CN or O value as text, decoded exactly as Go's encoding/asn1 decodes it. Only UTF8String and
 * PrintableString are read, the two types Go writes into the certificates it issues; the others
 * (T61String read as Latin-1, BMPString with its terminator stripped...) are refused rather than guessed.
 */
export function decodeString(element: DerElement, what: string): string {
  const { contents } = element;
  switch (element.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(contents);
      } catch (error) {
        throw new DerError(`${what} at offset ${String(element.offset)} is invalid UTF-8`, { cause: error });
      }
    case TAG.PRINTABLE_STRING: {
      const text = Buffer.from(contents).toString('latin1');
      if (!PRINTABLE.test(text))
        throw new DerError(
          `${what} at offset ${String(element.offset)} is a PrintableString with a character outside its set`,
        );
      return text;
    }
    default: {
      const type = STRING_TYPE_NAMES[element.tag] ?? `tag 0x${element.tag.toString(16)}`;
      throw new UnsupportedStringError(
        `${what} at offset ${String(element.offset)} is a ${type}: only UTF8String and PrintableString are accepted`,
      );
    }
  }
}
