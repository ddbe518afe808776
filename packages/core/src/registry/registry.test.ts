import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { emptyRegistry, isValidTeamName, parseRegistry, serializeRegistry, teamOf, type Registry } from './registry.js';

const FILE = '.cpv/registry.yaml';

function parseError(text: string): FormatError {
  try {
    parseRegistry(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    return err as FormatError;
  }
  throw new Error(`accepted:\n${text}`);
}

const sample: Registry = {
  version: 1,
  teams: { vision: { remote: 'vision-store', description: 'image models' } },
  models: { 'vision/resnet': { path: 'models/resnet.safetensors', description: 'ResNet-50' }, bert: { path: 'models/bert' } },
  data: { imagenet: { path: 'data/imagenet' } },
};

describe('registry format', () => {
  it('round-trips, with names sorted for stable diffs', () => {
    const text = serializeRegistry(sample);
    expect(parseRegistry(text, FILE)).toEqual(sample);
    expect(text.indexOf('bert:')).toBeLessThan(text.indexOf('vision/resnet:'));
    expect(text.startsWith('# cpv registry')).toBe(true);
  });

  it('reads an empty file and omits empty sections', () => {
    expect(parseRegistry('', FILE)).toEqual(emptyRegistry());
    expect(serializeRegistry(emptyRegistry())).not.toMatch(/^(teams|models|data):/m);
  });

  it.each([
    ['an unknown version', 'version: 2\n', 'unsupported version 2'],
    ['a missing version', 'models: {}\n', 'unsupported version null'],
    ['an unknown top-level key', 'version: 1\nartifacts: {}\n', 'unknown key "artifacts"'],
    ['an unknown entry key', 'version: 1\nmodels:\n  a:\n    path: a\n    sha: x\n', 'models.a: unknown key "sha"'],
    ['an entry without a path', 'version: 1\nmodels:\n  a:\n    description: x\n', 'models.a: missing "path"'],
    ['a path that is not a string', 'version: 1\nmodels:\n  a:\n    path: 12\n', 'models.a.path must be a string'],
    ['a traversal path', 'version: 1\ndata:\n  d:\n    path: ../outside\n', '"..\" path component'],
    ['an absolute path', 'version: 1\ndata:\n  d:\n    path: /etc\n', 'absolute path'],
    ['a path inside .cpv', 'version: 1\ndata:\n  d:\n    path: .cpv/cache\n', 'inside .cpv or .git'],
    ['a bad name', 'version: 1\nmodels:\n  "a b":\n    path: x\n', 'invalid name "a b"'],
    ['a name with two slashes', 'version: 1\nmodels:\n  a/b/c:\n    path: x\n', 'invalid name "a/b/c"'],
    ['one path under two names', 'version: 1\nmodels:\n  a:\n    path: x\ndata:\n  b:\n    path: x\n', 'x is registered twice'],
    ['a bad team remote', 'version: 1\nteams:\n  t:\n    remote: "no spaces"\n', 'invalid remote name'],
    ['a bad team name', 'version: 1\nteams:\n  "a/b": {}\n', 'invalid team name'],
    ['an alias', 'version: 1\nmodels:\n  a: &x\n    path: p\n  b: *x\n', 'aliases'],
    ['duplicate keys', 'version: 1\nversion: 1\n', 'invalid YAML'],
    ['a list', '- 1\n', 'expected a mapping'],
  ])('rejects %s, naming the file', (_what, text, message) => {
    const e = parseError(text);
    expect(e.message).toContain(FILE);
    expect(e.message).toContain(message);
    expect(e.hint).toContain('cpv model init');
  });

  it('splits team/name and checks team names', () => {
    expect(teamOf('vision/resnet')).toBe('vision');
    expect(teamOf('resnet')).toBeUndefined();
    expect(isValidTeamName('vision')).toBe(true);
    expect(isValidTeamName('a/b')).toBe(false);
    expect(isValidTeamName('.hidden')).toBe(false);
  });
});
