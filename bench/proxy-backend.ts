// The backend of the proxy benchmark and profile, in a Node process of its own: the
// proxy under test must not share an event loop with it. Serves bench/proxy-targets.ts's
// POD (src/localfed's Backend, the sample pod fedgate proxies to in a local federation)
// until its stdin closes (whoever started it ended or died) or SIGTERM. Prints `ready`.
// First: this process reaches loopback only, as every benchmark process does.
import '../src/netguard/install.ts';
import { Backend } from '../src/localfed/backends.ts';
import { POD } from './proxy-targets.ts';

const backend = new Backend(POD);
await backend.start();
const quit = () => void backend.stop().finally(() => process.exit(0));
process.stdin.on('close', quit);
process.stdin.resume();
process.once('SIGTERM', quit);
process.stdout.write('ready\n');
