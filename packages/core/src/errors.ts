/**
 * Every failure cpv reports on purpose is a CpvError: a stable `code` callers can
 * switch on, a `hint` that tells the user the next step, and the process exit code
 * the CLI should use. Anything else that escapes is a bug.
 */
export type ErrorCode =
  | 'NOT_A_REPO'
  | 'NOT_A_GIT_REPO'
  | 'NOT_FOUND'
  | 'INTEGRITY'
  | 'POINTER_PARSE'
  | 'FORMAT'
  | 'REMOTE'
  | 'CONFIG'
  | 'CONFLICT'
  | 'USAGE'
  | 'GIT';

export interface CpvErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured data for `--json` output and for tests. */
  data?: Record<string, unknown>;
}

/** Base class of every deliberate cpv failure. */
export class CpvError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: CpvErrorOptions = {}, exitCode = 1) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = exitCode;
    this.data = opts.data ?? {};
  }
}

/** The directory is not inside a cpv repository (no `.cpv/config` found upward). */
export class NotARepoError extends CpvError {
  constructor(dir: string, opts: CpvErrorOptions = {}) {
    super('NOT_A_REPO', `not a cpv repository: ${dir}`, { hint: 'run `cpv init` at the root of your git repository', ...opts }, 2);
  }
}

/** A git operation needs a git repository and there is none. */
export class NotAGitRepoError extends CpvError {
  constructor(dir: string, opts: CpvErrorOptions = {}) {
    super('NOT_A_GIT_REPO', `not a git repository: ${dir}`, { hint: 'run `git init` first, or pass --no-scm to use cpv without git', ...opts }, 2);
  }
}

/** An object, path, pointer or remote that was asked for does not exist. */
export class NotFoundError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('NOT_FOUND', message, opts, 3);
  }
}

/** Stored bytes do not match their oid, or a stored object contradicts itself. */
export class IntegrityError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('INTEGRITY', message, { hint: 'the object is corrupt; nothing in the workspace was changed. Run `cpv pull` again to re-fetch it, or ask whoever pushed it to `cpv push` again', ...opts }, 4);
  }
}

/** A pointer (`.cpv`) file is malformed, hostile or of an unknown version. */
export class PointerParseError extends CpvError {
  readonly file: string;
  readonly line: number | undefined;
  constructor(file: string, reason: string, line?: number, opts: CpvErrorOptions = {}) {
    super('POINTER_PARSE', `${file}${line === undefined ? '' : `:${line}`}: ${reason}`, { hint: `fix or restore the pointer (e.g. \`git checkout -- ${file}\`), then run the command again`, ...opts }, 5);
    this.file = file;
    this.line = line;
  }
}

/** A stored object (manifest, tree, pack, config) has a format cpv does not accept. */
export class FormatError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('FORMAT', message, opts, 4);
  }
}

/** A remote could not be reached or answered with an error. */
export class RemoteError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('REMOTE', message, opts, 6);
  }
}

/** Configuration is missing or invalid (unknown remote, bad value). */
export class ConfigError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('CONFIG', message, opts, 7);
  }
}

/** The operation would overwrite or lose something; it needs --force or a user decision. */
export class ConflictError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('CONFLICT', message, opts, 8);
  }
}

/** The caller passed arguments that cannot work. */
export class UsageError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('USAGE', message, opts, 2);
  }
}

/** git failed. */
export class GitError extends CpvError {
  constructor(message: string, opts: CpvErrorOptions = {}) {
    super('GIT', message, opts, 9);
  }
}
