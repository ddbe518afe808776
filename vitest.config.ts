import { defineConfig } from 'vitest/config';

// Unit tests run against sources through the private `cpv-source` export condition;
// end-to-end tests in test/ run the built `cpv` binary (scripts/test.sh builds first).
export default defineConfig({
  ssr: { resolve: { conditions: ['cpv-source', 'node', 'import', 'default'] } },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['packages/*/src/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          // Starts an S3 server (Ceph radosgw by default) unless CPV_TEST_S3_ENDPOINT
          // names one; prints one loud line and skips the S3 suites when it cannot.
          globalSetup: ['test/setup/s3-server.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
