/** Storage backends: the Backend contract, key rules and the directory backend. */
export * from './backend.js';
export * from './validate-key.js';
export * from './directory.js';
