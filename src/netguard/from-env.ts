// Imported first by every fedgate process entry (the CLI, node:cluster workers): a
// process started by a test or a benchmark inherits FEDGATE_LOOPBACK_ONLY=1 and is
// guarded from its first line; anywhere else this does nothing.
import { installLoopbackGuard } from './loopback.ts';

if (process.env.FEDGATE_LOOPBACK_ONLY === '1') installLoopbackGuard();
