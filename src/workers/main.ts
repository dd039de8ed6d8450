// The entry of a worker process: WorkerPool has node:cluster fork this file.
// First: a worker of a fedgate under test or benchmark reaches loopback only.
import '../netguard/from-env.ts';
import { runWorker } from './worker.ts';

runWorker();
