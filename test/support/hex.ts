// Annotated byte fixtures: one field per line, hex bytes then a `#` comment, e.g.
//   38000000          # in_header.len = 56
// Whitespace and comments are ignored; the rest must be hex digits.
export function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`bad hex fixture: ${digits}`);
  return Buffer.from(digits, 'hex');
}

/** Little-endian hex of an unsigned integer of `bytes` width, for building fixture lines. */
export function le(value: number | bigint, bytes: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b.subarray(0, bytes).toString('hex');
}
