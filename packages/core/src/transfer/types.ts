/** A tracked file or directory to move between cache and remote. */
export interface TransferItem {
  /** File oid, or tree oid for a directory. */
  oid: string;
  type: 'file' | 'dir';
  /** Bytes (for a directory, the sum of its files). */
  size: number;
  /** Workspace path, for messages. */
  path: string;
  /** The artifact name its pointer records (`team/name` routes to the team's remote). */
  name?: string;
  /**
   * Directories only: the entry paths (relative to the directory) to transfer; all
   * when undefined. Lets `pull data/train/x.bin` fetch one file of a tracked directory.
   */
  only?: ReadonlySet<string>;
}

/** Progress of a long operation, reported through `onProgress`. */
export interface ProgressEvent {
  phase: 'hash' | 'upload' | 'download' | 'checkout' | 'verify';
  /** Units done so far (bytes unless stated). */
  done: number;
  total: number;
  /** The path being worked on, when there is one. */
  path?: string;
}
