// Parsing of user-given metadata, parameters and metrics flags, shared by commands.
import { Flags } from '@oclif/core';
import { loadValues, UsageError, type MetaValue } from '@cpv/core';

/** `--meta k=v` pairs: `true`/`false` become booleans, decimal numbers numbers, the rest strings. */
export function parseMeta(pairs: readonly string[]): Record<string, MetaValue> {
  const out: Record<string, MetaValue> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`--meta ${JSON.stringify(p)} is not key=value`, { hint: 'e.g. --meta framework=pytorch --meta epochs=10' });
    const k = p.slice(0, i);
    const v = p.slice(i + 1);
    out[k] = v === 'true' ? true : v === 'false' ? false : v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}

/** --params / --metrics: YAML or JSON files, or key=value (repeatable). */
export const valueFlags = {
  params: Flags.string({ description: 'Experiment parameters: a YAML/JSON file or key=value (repeatable).', multiple: true }),
  metrics: Flags.string({ description: 'Metrics: a YAML/JSON file or key=value (repeatable).', multiple: true }),
};

export async function values(specs: string[] | undefined, what: string): Promise<Record<string, MetaValue> | undefined> {
  return specs && specs.length > 0 ? loadValues(process.cwd(), specs, what) : undefined;
}
