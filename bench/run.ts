// npm run bench [-- NAME...]: runs every bench/*.bench.ts (or the named ones), one
// process each, one after another so they do not compete for the two cores.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('.', import.meta.url).pathname;
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w) && !all.includes(`${w}.bench.ts`));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
const chosen =
  wanted.length === 0
    ? all
    : all.filter((f) => wanted.includes(f) || wanted.includes(f.replace(/\.bench\.ts$/, '')));
let failed = 0;
for (const file of chosen) {
  console.log(`\n=== ${file}`);
  const r = spawnSync(process.execPath, [join(dir, file)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
