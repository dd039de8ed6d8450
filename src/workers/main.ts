// The entry of a worker process: WorkerPool has node:cluster fork this file.
import { runWorker } from './worker.ts';

runWorker();
