/** Types of synth.js (plain JS so the demo and benchmarks run without a build). */
export function fillRandom<T extends Uint8Array>(buf: T, seed: number): T;
export function modelLayout(bytes: number, tensors: number): { header: Buffer; tensors: Array<{ name: string; offset: number; length: number }> };
export function writeModel(path: string, opts: { bytes: number; tensors?: number; seed?: number }): Array<{ name: string; offset: number; length: number }>;
export function rewriteTensors(path: string, opts: { fraction: number; seed?: number }): number;
export function writeDataset(dir: string, opts: { files: number; seed?: number }): number;
