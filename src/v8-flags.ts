// V8 settings for a long-running proxy, set before the rest of fedgate's modules run.
//
// Allocation-site pretenuring off. V8 allocates the objects of an allocation site
// straight in the old generation once most of them have survived a scavenge. A burst of
// start-up work (listing and compiling a thousand routes while streams queue callbacks)
// can make that true for sites the request path uses on every request (in such a
// process, process.nextTick took 2-3 times as long); V8 does not take the decision
// back. Those short-lived objects then fill the old generation, and every scavenge
// walks the pointers from them into the young one. Measured with the proxy benchmark's
// process holding 1,000 routes, started afresh each time: in 4 of 30 starts its
// scavenges took 27 ms instead of 2 ms and it spent 1.4 times the CPU per request; in
// none of 10 with this setting, nor of 8 with the flag on the command line, nor of 7
// without routes. ES modules are all loaded before any runs, so the few sites V8
// decided on while loading keep their decision (5, traced with
// --trace-pretenuring-statistics).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-allocation-site-pretenuring');
