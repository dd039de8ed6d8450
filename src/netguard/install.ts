// Imported first by test and benchmark processes: guards this process, and sets
// FEDGATE_LOOPBACK_ONLY=1 so that every fedgate process it starts guards itself too
// (through from-env.ts).
import { installLoopbackGuard } from './loopback.ts';

installLoopbackGuard();
process.env.FEDGATE_LOOPBACK_ONLY = '1';
