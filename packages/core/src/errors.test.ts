import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ConflictError,
  CpvError,
  FormatError,
  GitError,
  IntegrityError,
  NotAGitRepoError,
  NotARepoError,
  NotFoundError,
  PointerParseError,
  RemoteError,
  UsageError,
} from './errors.js';

describe('error classes', () => {
  it.each([
    [new NotARepoError('/w'), 'NOT_A_REPO', 2, 'not a cpv repository: /w', /cpv init/],
    [new NotAGitRepoError('/w'), 'NOT_A_GIT_REPO', 2, 'not a git repository: /w', /--no-scm/],
    [new NotFoundError('x is missing', { hint: 'run y' }), 'NOT_FOUND', 3, 'x is missing', /run y/],
    [new IntegrityError('pack p is corrupt'), 'INTEGRITY', 4, 'pack p is corrupt', /nothing in the workspace was changed/],
    [new PointerParseError('a/b.cpv', 'bad oid', 5), 'POINTER_PARSE', 5, 'a/b.cpv:5: bad oid', /git checkout -- a\/b\.cpv/],
    [new PointerParseError('a/b.cpv', 'too big'), 'POINTER_PARSE', 5, 'a/b.cpv: too big', /fix or restore/],
    [new FormatError('m: bad'), 'FORMAT', 4, 'm: bad', undefined],
    [new RemoteError('down'), 'REMOTE', 6, 'down', undefined],
    [new ConfigError('bad', { hint: 'fix it' }), 'CONFIG', 7, 'bad', /fix it/],
    [new ConflictError('would overwrite'), 'CONFLICT', 8, 'would overwrite', undefined],
    [new UsageError('no'), 'USAGE', 2, 'no', undefined],
    [new GitError('git failed'), 'GIT', 9, 'git failed', undefined],
  ])('%s has its code, exit code, message and hint', (err, code, exit, message, hint) => {
    expect(err).toBeInstanceOf(CpvError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(code);
    expect(err.exitCode).toBe(exit);
    expect(err.message).toBe(message);
    expect(err.name).toBe(err.constructor.name);
    if (hint) expect(err.hint).toMatch(hint);
    else expect(err.hint).toBeUndefined();
  });

  it('keeps the cause and structured data', () => {
    const cause = new Error('EIO');
    const err = new RemoteError('cannot read', { cause, data: { key: 'packs/ab/cd' } });
    expect(err.cause).toBe(cause);
    expect(err.data).toEqual({ key: 'packs/ab/cd' });
  });
});
