import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';

/** Whether prompting is possible: stdin and stderr are terminals. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/**
 * Ask one question on the terminal (prompt on stderr, so stdout stays clean). Returns
 * the default on an empty answer. With `secret`, typed characters are not echoed.
 */
export async function ask(question: string, opts: { default?: string; secret?: boolean } = {}): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const suffix = opts.default ? ` [${opts.secret ? '****' : opts.default}]` : '';
    const pending = rl.question(`${question}${suffix}: `);
    muted = opts.secret === true;
    const answer = (await pending).trim();
    if (opts.secret) process.stderr.write('\n');
    return answer === '' ? (opts.default ?? '') : answer;
  } finally {
    rl.close();
  }
}
