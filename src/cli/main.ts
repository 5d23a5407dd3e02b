/** `workstation-backup <command>`: see `program.ts`, or run with `--help`. */
import { runCli } from './program.js';

const code = await runCli(process.argv);
// Writes to a pipe are asynchronous: exiting at once would cut a large answer short for the
// script reading it. A write callback runs once everything written before it is flushed.
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
