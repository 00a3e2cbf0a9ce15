export * from './observation.js';
export * from './journal.js';
export * from './parse.js';
