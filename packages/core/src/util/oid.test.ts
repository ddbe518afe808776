import { describe, expect, it } from 'vitest';
import { fanout, isFileOid, isHexOid, oidHex, shortOid, toFileOid } from './oid.js';

const HEX = '5c1f0a2b3c4d' + 'e'.repeat(52);

describe('oid helpers', () => {
  it('isFileOid accepts exactly "b3:" + 64 lowercase hex', () => {
    expect(isFileOid('b3:' + HEX)).toBe(true);
    expect(isFileOid(HEX)).toBe(false);
    expect(isFileOid('b3:' + HEX.toUpperCase())).toBe(false);
    expect(isFileOid('b3:' + HEX.slice(1))).toBe(false);
    expect(isFileOid('b3:' + HEX + '0')).toBe(false);
    expect(isFileOid('B3:' + HEX)).toBe(false);
    expect(isFileOid('b3:' + HEX.slice(1) + 'g')).toBe(false);
    expect(isFileOid('b3:' + HEX + '\n')).toBe(false);
  });

  it('isHexOid accepts exactly 64 lowercase hex', () => {
    expect(isHexOid(HEX)).toBe(true);
    expect(isHexOid('b3:' + HEX)).toBe(false);
    expect(isHexOid(HEX + '\n')).toBe(false);
    expect(isHexOid(HEX.toUpperCase())).toBe(false);
  });

  it('oidHex and toFileOid are inverses; oidHex rejects a malformed oid', () => {
    expect(oidHex('b3:' + HEX)).toBe(HEX);
    expect(toFileOid(HEX)).toBe('b3:' + HEX);
    expect(() => oidHex(HEX)).toThrow(TypeError);
    expect(() => oidHex('b3:../../etc/passwd')).toThrow(TypeError);
  });

  it('fanout splits 2 + 62 hex', () => {
    expect(fanout(HEX)).toBe(`5c/${HEX.slice(2)}`);
  });

  it('shortOid keeps the prefix and 12 hex', () => {
    expect(shortOid('b3:' + HEX)).toBe('b3:5c1f0a2b3c4d');
    expect(shortOid(HEX)).toBe('5c1f0a2b3c4d');
  });
});
