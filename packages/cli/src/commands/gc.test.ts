import { describe, expect, it } from 'vitest';
import type { GcResult } from '@cpv/core';
import { describeGc } from './gc.js';

const pack = 'ab'.repeat(32);
const plan: GcResult = {
  dryRun: true,
  cancelled: false,
  scope: { allBranches: true, allTags: false, allCommits: false },
  commits: 3,
  reachable: 2,
  graceMs: 604_800_000,
  cache: {
    dir: '/w/.cpv/cache',
    removed: [{ kind: 'file', key: 'files/cd/ef', oid: 'b3:cdef', size: 2048 }],
    bytes: 2048,
    kept: 5,
    unresolvedTrees: [],
  },
  remote: {
    remote: 'origin',
    location: '/srv/remote',
    removed: [
      { kind: 'manifest', key: 'manifests/cd/ef', oid: 'b3:cdef', size: 100 },
      { kind: 'pack', key: 'packs/12/34', oid: '1234', size: 1_048_576 },
    ],
    bytes: 1_048_676,
    kept: { trees: 1, manifests: 2, pages: 4, packs: 3 },
    young: [{ kind: 'pack', key: 'packs/56/78', oid: '5678', size: 4096 }],
    partial: [{ key: `packs/${pack.slice(0, 2)}/${pack.slice(2)}`, pack, size: 9000, reclaimable: 3072 }],
    reclaimableBytes: 3072,
    unreadable: [],
    spared: 0,
  },
};

describe('describeGc', () => {
  it('states the scope, then per place what would go (every key) and what stays and why', () => {
    expect(describeGc(plan).split('\n')).toEqual([
      'Reachable: 2 version(s) of tracked files and directories, from the workspace, HEAD, all branches (3 commit(s) read).',
      'Cache /w/.cpv/cache: would delete 1 file, 2.0 KiB; 5 kept.',
      '  file     files/cd/ef (2.0 KiB)',
      'Remote origin (/srv/remote): would delete 1 manifest, 1 pack, 1.0 MiB; kept 1 tree(s), 2 manifest(s), 4 page(s), 3 pack(s).',
      '  manifest manifests/cd/ef (100 B)',
      '  pack     packs/12/34 (1.0 MiB)',
      '  kept by the 7d grace period: 1 pack, 4.0 KiB',
      '  kept, partly referenced: 1 pack(s) holding 3.0 KiB that nothing kept references',
    ]);
  });

  it('says deleted after the fact, and why no pack went when a record cannot be read', () => {
    const done = describeGc({
      ...plan,
      dryRun: false,
      cache: { ...plan.cache, skipped: 'shared' },
      remote: { ...plan.remote!, unreadable: [{ key: 'manifests/aa/bb', reason: 'not valid JSON' }] },
    });
    expect(done).toContain('Cache /w/.cpv/cache: left alone: shared.');
    expect(done).toContain('Remote origin (/srv/remote): deleted 1 manifest, 1 pack');
    expect(done).toContain('  no page or pack deleted: 1 kept record(s) cannot be read (run `cpv fsck -r origin`):\n    manifests/aa/bb: not valid JSON');
  });

  it('lists at most 20 objects per place and says how many more', () => {
    const many = Array.from({ length: 25 }, (_, i) => ({ kind: 'file' as const, key: `files/00/${i}`, oid: `b3:${i}`, size: 1 }));
    const text = describeGc({ ...plan, cache: { ...plan.cache, removed: many } });
    expect(text).toContain('files/00/19');
    expect(text).not.toContain('files/00/20 ');
    expect(text).toContain('  … and 5 more (--json lists all)');
  });
});
