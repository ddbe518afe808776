/**
 * @cpv/core: content-defined chunking, a content-addressed cache, remotes and
 * pointer files. The library never prints, prompts or exits: callers pass `cwd`,
 * `signal` and `onProgress`, and get results or CpvErrors back.
 */
export * from './errors.js';
export * from './backend/index.js';
export { loadHasher, blake3Hex, hashImpl, type Hasher, type HashImpl } from './hash/blake3.js';
export { Chunker, DEFAULT_CHUNKER, validateChunkerParams, type ChunkerParams } from './chunk/fastcdc.js';
export { scanFile, scanBytes, type ScanResult } from './chunk/scan.js';
export * from './config/config.js';
export * from './pointer/pointer.js';
export { Cache } from './store/cache.js';
export { parseTree, serializeTree, type TreeEntry } from './store/tree.js';
export { PackBuilder, readPackIndex } from './store/pack.js';
export * from './store/manifest.js';
export { Remote, openBackend, remoteKeys, remoteIdOf, type ChunkLocation } from './remote/remote.js';
export type { ProgressEvent, TransferItem } from './transfer/types.js';
export type { PushResult } from './transfer/push.js';
export type { FetchResult } from './transfer/fetch.js';
export { openRepo, findRepoRoot, type Repo, type RepoOptions } from './repo/repo.js';
export { init, type InitOptions, type InitResult } from './repo/init.js';
export { add, type AddOptions, type AddResult, type AddedItem } from './repo/add.js';
export { status, type StatusItem, type StatusOptions } from './repo/status.js';
export { checkout, type CheckoutOptions, type CheckoutResult, type CheckoutItem } from './repo/checkout.js';
export { push, fetch, pull, type SyncOptions } from './repo/sync.js';
export { diff, type DiffItem, type DiffResult } from './repo/diff.js';
export { remoteAdd, remoteList, remoteRemove, remoteDefault, remoteModify, type RemoteInfo } from './repo/remotes.js';
export { REMOTE_OPTIONS, schemeOf, type RemoteOption } from './remote/options.js';
export { parseS3Url } from './backend/s3-url.js';
export type { S3Options } from './backend/s3.js';
export { configGet, configSet, SETTING_NAMES } from './repo/settings.js';
export { doctor, type DoctorCheck, type DoctorOptions } from './repo/doctor.js';
export { listPointers, resolveTargets, type PointerRef, type Target } from './repo/pointers.js';
export { gitTopLevel } from './git/git.js';
export { isFileOid, shortOid } from './util/oid.js';
export {
  parseVersionBlock,
  formatVersionMessage,
  hasVersionBlock,
  VERSION_BEGIN,
  VERSION_END,
  type VersionArtifact,
  type VersionBlock,
  type VersionMessage,
} from './pointer/version-block.js';
export {
  createTag,
  listTags,
  showTag,
  verifyTag,
  type CreateTagOptions,
  type CreateTagResult,
  type TagSummary,
  type TagInfo,
  type VerifyTagOptions,
  type VerifyTagResult,
} from './repo/tags.js';
export type { MissingObject } from './repo/publish.js';
export { pushTags, type PushTagsOptions, type PushTagsResult, type TagPushOutcome } from './repo/sync.js';
export {
  installHooks,
  isCpvHook,
  parsePushedRefs,
  prePush,
  restoreWorkspace,
  HOOK_NAMES,
  HOOK_MARKER,
  type HookName,
  type HookRunner,
  type InstallHooksOptions,
  type InstallHooksResult,
  type InstalledHook,
  type PushedRef,
  type PrePushOptions,
  type PrePushResult,
  type PrePushRef,
  type RestoreResult,
  type RestoreWarning,
} from './repo/hooks.js';
export { revert, type RevertOptions, type RevertResult, type RevertItem } from './repo/revert.js';
export {
  gc,
  DEFAULT_GRACE_MS,
  type GcOptions,
  type GcResult,
  type GcCacheResult,
  type GcRemoteResult,
  type GcObject,
  type GcKind,
  type GcPartialPack,
} from './repo/gc.js';
export { fsck, type FsckOptions, type FsckResult, type FsckProblem } from './repo/fsck.js';
export { withRepoLock, readLock, lockPath, LOCK_MAX_AGE_MS, LOCK_TOKEN_ENV, type LockInfo, type LockOptions } from './repo/lock.js';
export { reachableContent, type ReachScope, type Reachable } from './repo/reachable.js';
export { listLayout, LAYOUT_PREFIXES, type LayoutObject } from './remote/listing.js';
export { log, type LogOptions, type LogResult, type PathLog, type LogVersion, type LineageItem } from './repo/log.js';
export {
  setupGitRemote,
  parseGitUrl,
  explainRemoteFailure,
  checkSshKey,
  sshCommandForKey,
  type GitRemoteSetupOptions,
  type GitRemoteSetupResult,
  type GitUrl,
  type GitUrlKind,
  type RemoteFailure,
} from './git/remote-setup.js';
export {
  parseRegistry,
  serializeRegistry,
  teamOf,
  REGISTRY_FILE,
  REGISTRY_KINDS,
  type Registry,
  type RegistryEntry,
  type RegistryKind,
  type TeamEntry,
} from './registry/registry.js';
export { readRegistry } from './repo/routing.js';
export type { Routed } from './repo/sync.js';
export {
  artifactInit,
  artifactUpload,
  qualifiedName,
  type ArtifactRef,
  type ArtifactInitOptions,
  type ArtifactInitResult,
  type ArtifactUploadOptions,
  type ArtifactUploadResult,
  type UploadedArtifact,
} from './repo/artifacts.js';
export { artifactDownload, resolveVersion, type ArtifactDownloadOptions, type ArtifactDownloadResult, type DownloadedArtifact } from './repo/download.js';
export {
  artifactList,
  artifactVersions,
  artifactTag,
  artifactRevert,
  artifactInfo,
  type ArtifactSummary,
  type ArtifactVersion,
  type ArtifactTagOptions,
  type ArtifactRevertOptions,
  type ArtifactInfo,
} from './repo/artifact-history.js';
export {
  checkpointCreate,
  checkpointList,
  checkpointInfo,
  checkpointRevert,
  isArtifactTag,
  type CheckpointCreateOptions,
  type CheckpointCreateResult,
  type CheckpointSummary,
  type CheckpointInfo,
  type CheckpointRevertOptions,
} from './repo/checkpoints.js';
export { loadValues, expShow, expCompare, type ExpRow, type ExpCompareRow, type ExpCompareResult } from './repo/experiments.js';
export { teamAdd, teamList, type TeamAddOptions, type TeamAddResult } from './repo/teams.js';
export { versionTags, type VersionTag } from './repo/version-tags.js';
