import { Command, Flags, Errors } from '@oclif/core';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CpvError, openRepo, type ConfigOverrides, type ProgressEvent, type Repo } from '@cpv/core';
import { Progress } from './render.js';

/**
 * Base of every cpv command: `--json` (machine output on stdout, diagnostics on
 * stderr), `--quiet`, and the one place errors become text and exit codes.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors (and --json output).', helpGroup: 'GLOBAL' }),
  };

  protected quiet = false;

  /** Open the repository around the working directory with CLI-resolved overrides. */
  protected async repo(overrides: ConfigOverrides = {}): Promise<Repo> {
    const xdg = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
    return openRepo({ cwd: process.cwd(), env: process.env, overrides, userConfig: join(xdg, 'cpv', 'config') });
  }

  /** A progress reporter on stderr (silent unless stderr is a TTY and output is human). */
  protected progress(label: string): { onProgress: (e: ProgressEvent) => void; done: () => void } {
    const p = new Progress(label, process.stderr, !this.quiet && !this.jsonEnabled() && process.stderr.isTTY === true);
    return { onProgress: (e) => p.update(e), done: () => p.done() };
  }

  /** Human output (stdout), suppressed by --json and --quiet. */
  protected say(text: string): void {
    if (!this.jsonEnabled() && !this.quiet) this.log(text);
  }

  /** Diagnostics (stderr), suppressed by --quiet. */
  protected note(text: string): void {
    if (!this.quiet) process.stderr.write(text + '\n');
  }

  protected override async init(): Promise<void> {
    await super.init();
    this.quiet = process.argv.includes('--quiet') || process.argv.includes('-q');
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (err instanceof Errors.CLIError && !(err instanceof CpvError)) {
      // Flag and argument parsing errors: oclif's own message and exit code 2.
      return super.catch(err);
    }
    if (err instanceof CpvError) {
      process.exitCode = err.exitCode;
      if (this.jsonEnabled()) {
        this.logJson({ error: { code: err.code, message: err.message, hint: err.hint, ...(Object.keys(err.data).length ? { data: err.data } : {}) } });
      }
      process.stderr.write(`cpv: error: ${err.message}\n${err.hint ? `  hint: ${err.hint}\n` : ''}`);
      return;
    }
    if ((err as NodeJS.ErrnoException).name === 'AbortError') {
      process.exitCode = 130;
      process.stderr.write('cpv: interrupted\n');
      return;
    }
    process.exitCode = 70;
    if (this.jsonEnabled()) this.logJson({ error: { code: 'BUG', message: err.message } });
    process.stderr.write(`cpv: internal error (this is a bug in cpv; please report it with the text below)\n${err.stack ?? String(err)}\n`);
  }
}

/** Flags shared by commands that move data. */
export const transferFlags = {
  remote: Flags.string({ char: 'r', description: "Remote name (default: each artifact's team remote, else the default remote)." }),
  jobs: Flags.integer({ char: 'j', description: 'Parallel transfers.', min: 1, max: 256 }),
};

/** `--dry-run` for every mutating command. */
export const dryRunFlag = {
  'dry-run': Flags.boolean({ char: 'n', description: 'Show what would happen; change nothing.' }),
};
